//! wgpu plumbing: adapter choice (PRIMARY first, GL only as a fallback; honours
//! `WGPU_BACKEND` and `WGPU_ADAPTER_NAME`), device creation with the adapter's own
//! limits, error capture (validation errors become `anyhow` errors instead of the
//! default panic), the pipeline cache and buffer helpers, and the loop limit: every
//! kernel's driver asks `steps_per_dispatch` how many steps one dispatch may take, so
//! no driver can forget llvmpipe's silent loop cut-off.

use anyhow::{anyhow, bail, Context, Result};
use std::collections::HashMap;
use std::sync::{mpsc, Arc, Mutex};
use wgpu::util::DeviceExt;

const LOOP_PROBE: &str = include_str!("../../../shaders/common/loop_probe.wgsl");

pub struct Gpu {
    pub instance: wgpu::Instance,
    pub adapter: wgpu::Adapter,
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    /// The device has SHADER_INT64 (kernels then multiply in u64).
    pub int64: bool,
    /// Loop iterations one invocation runs before the device silently cuts its loops
    /// short (measured at creation by `probe_loop_limit`); `None`: no cut-off seen.
    pub loop_limit: Option<u64>,
    errors: Arc<Mutex<Vec<String>>>,
    pipelines: Mutex<HashMap<(String, String), Arc<wgpu::ComputePipeline>>>,
    /// Workgroup bytes of every entry point of each kernel source compiled so far
    /// (`workgroup_bytes`: one naga pass per source, not per entry point).
    workgroup: Mutex<HashMap<String, HashMap<String, u64>>>,
    /// The pacer's learnt segment budget per kernel (`segments::drive`) and the chunk
    /// size it was learnt at, keyed by the address of the pipeline that does the steps
    /// (held here too, so that the address is never another pipeline's).
    budgets: Mutex<HashMap<usize, (Arc<wgpu::ComputePipeline>, f64, u64)>>,
}

/// Mesa's implicit Vulkan layer VK_LAYER_MESA_device_select calls
/// `wl_display_connect` whenever the instance enables VK_KHR_wayland_surface (wgpu
/// always does, and offers no way to leave it out short of violating the contract of
/// `init_with_callback`), and libwayland then prints "error: XDG_RUNTIME_DIR is
/// invalid or not set in the environment." on every command. The layer only orders
/// GPUs for display use; with no Wayland session (XDG_RUNTIME_DIR unset) and no user
/// choice (MESA_VK_DEVICE_SELECT), we switch it off by its documented variable.
/// Set before the first instance, while the process reads no environment elsewhere.
fn quiet_mesa_device_select() {
    let unset = |k: &str| std::env::var_os(k).is_none_or(|v| v.is_empty());
    if unset("XDG_RUNTIME_DIR") && unset("NODEVICE_SELECT") && unset("MESA_VK_DEVICE_SELECT") {
        std::env::set_var("NODEVICE_SELECT", "1");
    }
}

fn instance(backends: wgpu::Backends) -> wgpu::Instance {
    if backends.contains(wgpu::Backends::VULKAN) {
        quiet_mesa_device_select();
    }
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = backends;
    wgpu::Instance::new(desc)
}

/// Backends to try, in order.
fn backend_order() -> Vec<wgpu::Backends> {
    match wgpu::Backends::from_env() {
        Some(b) => vec![b],
        None => vec![wgpu::Backends::PRIMARY, wgpu::Backends::GL],
    }
}

/// One line per adapter: name, backend, device type, f64 support; software
/// rasterisers (DeviceType::Cpu, e.g. llvmpipe) are flagged.
pub fn list_adapters() -> Vec<String> {
    let mut out = Vec::new();
    for b in backend_order() {
        let inst = instance(b);
        for a in pollster::block_on(inst.enumerate_adapters(b)) {
            let f64 = a.features().contains(wgpu::Features::SHADER_F64);
            out.push(format!(
                "{}, f64: {}",
                describe(&a.get_info()),
                if f64 { "yes" } else { "no" }
            ));
        }
        if !out.is_empty() {
            break;
        }
    }
    out
}

/// What to install when the only adapter is an OpenGL one (no Vulkan driver: wgpu
/// then falls back to GL, which has no f64 and is slower).
pub const GL_ONLY_NOTE: &str = "OpenGL, wgpu's fallback when no Vulkan driver is found: no f64, slower; \
    install a Vulkan driver (Debian/Ubuntu: apt-get install -y mesa-vulkan-drivers, for llvmpipe) or use --backend cpu";

/// "name [Backend, type]" with software rasterisers and the OpenGL fallback called out.
pub fn describe(info: &wgpu::AdapterInfo) -> String {
    let kind = match info.device_type {
        wgpu::DeviceType::Cpu => "software rasteriser: CPU".to_string(),
        t => format!("{t:?}"),
    };
    let gl = if info.backend == wgpu::Backend::Gl {
        format!("; {GL_ONLY_NOTE}")
    } else {
        String::new()
    };
    format!("{} [{:?}, {}{gl}]", info.name, info.backend, kind)
}

fn pick_adapter() -> Result<(wgpu::Instance, wgpu::Adapter)> {
    let wanted = std::env::var("WGPU_ADAPTER_NAME")
        .ok()
        .map(|s| s.to_lowercase());
    let mut seen = Vec::new();
    for b in backend_order() {
        let inst = instance(b);
        if let Some(name) = &wanted {
            for a in pollster::block_on(inst.enumerate_adapters(b)) {
                let info = a.get_info();
                if info.name.to_lowercase().contains(name.as_str()) {
                    return Ok((inst, a));
                }
                seen.push(info.name);
            }
            continue;
        }
        let opts = wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::from_env()
                .unwrap_or(wgpu::PowerPreference::HighPerformance),
            force_fallback_adapter: false,
            compatible_surface: None,
            ..Default::default()
        };
        if let Ok(a) = pollster::block_on(inst.request_adapter(&opts)) {
            return Ok((inst, a));
        }
    }
    match wanted {
        Some(n) => bail!("WGPU_ADAPTER_NAME={n:?} matches no adapter (found: {seen:?})"),
        None => bail!("no wgpu adapter found (tried Vulkan/Metal/DX12, then GL); install a driver or use --backend cpu"),
    }
}

impl Gpu {
    pub fn new(f64: bool) -> Result<Self> {
        let (instance, adapter) = pick_adapter()?;
        let info = adapter.get_info();
        let mut features = wgpu::Features::empty();
        if f64 {
            if !adapter.features().contains(wgpu::Features::SHADER_F64) {
                bail!(
                    "precision: f64 needs an adapter with SHADER_F64; {} has none (use \"f32\")",
                    info.name
                );
            }
            features |= wgpu::Features::SHADER_F64;
        }
        // u64 makes Philox's mul-hi one widening multiply instead of four 16-bit ones.
        let int64 = adapter.features().contains(wgpu::Features::SHADER_INT64);
        if int64 {
            features |= wgpu::Features::SHADER_INT64;
        }
        let limits = adapter.limits();
        let desc = wgpu::DeviceDescriptor {
            label: Some("smflow"),
            required_features: features,
            required_limits: limits.clone(),
            ..Default::default()
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&desc))
            .with_context(|| format!("requesting a device on {}", info.name))?;
        let errors = Arc::new(Mutex::new(Vec::new()));
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut v) = sink.lock() {
                v.push(e.to_string());
            }
        }));
        let mut gpu = Self {
            instance,
            adapter,
            device,
            queue,
            info,
            limits,
            int64,
            loop_limit: None,
            errors,
            pipelines: Mutex::new(HashMap::new()),
            workgroup: Mutex::new(HashMap::new()),
            budgets: Mutex::new(HashMap::new()),
        };
        gpu.loop_limit = gpu.probe_loop_limit()?;
        Ok(gpu)
    }

    /// Runs `shaders/common/loop_probe.wgsl`: asks one invocation for `PROBE_LOOP`
    /// iterations and reads back how many ran. Fewer means the device cuts loops off
    /// (llvmpipe: 65 535, counted over all loops of the invocation; the probe also
    /// checks that a second loop after the cut-off does not run in full, i.e. that the
    /// count is shared, and takes the worst case either way).
    fn probe_loop_limit(&self) -> Result<Option<u64>> {
        const PROBE_LOOP: u32 = 1 << 20;
        const SECOND: u32 = 8;
        let pipeline = self.pipeline(LOOP_PROBE, "loop_probe")?;
        let io = self.storage_init(
            bytemuck::cast_slice(&[PROBE_LOOP, 0, SECOND, 0, 0]),
            "loop probe",
        );
        let bind = self.bind_group(&pipeline.get_bind_group_layout(0), &[(0, &io)]);
        self.dispatch(&pipeline, &bind, 1);
        let staging = self.readback_buffer(20);
        let out: Vec<u32> = bytemuck::pod_collect_to_vec(&self.read(&io, &staging, 20)?);
        let (first, second) = (out[1], out[3]);
        if first >= PROBE_LOOP && second >= SECOND {
            return Ok(None);
        }
        // A limit below the probe's own 8 iterations would make every kernel wrong.
        let limit = first.min(PROBE_LOOP) as u64;
        if limit < 1024 {
            bail!(
                "{} runs only {limit} loop iterations per shader invocation; no smflow kernel can run correctly on it (use --backend cpu)",
                self.info.name
            );
        }
        Ok(Some(limit))
    }

    /// Loop iterations an invocation may use on this device: the measured limit less a
    /// margin of 1/16 for loops the per-kernel counts do not see; `None`: unlimited.
    pub fn loop_budget(&self) -> Option<u64> {
        self.loop_limit.map(|l| l - l / 16)
    }

    /// Steps one dispatch may advance, for a kernel whose invocation runs at most
    /// `fixed + per_step · steps` loop iterations (generous counts: every loop of the
    /// kernel, nested ones multiplied out, as if none were unrolled). `u32::MAX` where
    /// loops are not cut off. Fails, naming `what` and `--backend cpu`, when even one
    /// step does not fit.
    pub fn steps_per_dispatch(&self, per_step: u64, fixed: u64, what: &str) -> Result<u32> {
        let Some(budget) = self.loop_budget() else {
            return Ok(u32::MAX);
        };
        let need = fixed.saturating_add(per_step.max(1));
        if need > budget {
            bail!(
                "{what} needs ~{need} shader loop iterations in one invocation, beyond the {budget} \
                 that {} runs correctly (it cuts loops off at {} iterations and carries on with wrong \
                 numbers); use --backend cpu, or a hardware GPU",
                self.info.name,
                self.loop_limit.unwrap_or(0)
            );
        }
        Ok(((budget - fixed) / per_step.max(1)).min(u32::MAX as u64) as u32)
    }

    /// Fails with the first uncaptured wgpu error since the last check.
    /// The adapter and the precision a backend computes in, for reports.
    pub fn label(&self, p: crate::backend::Precision) -> String {
        let p = match p {
            crate::backend::Precision::F32 => "f32",
            crate::backend::Precision::F64 => "f64",
        };
        format!("{} ({p})", describe(&self.info))
    }

    /// Whether the adapter is a software rasteriser (e.g. llvmpipe).
    pub fn is_software(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }

    /// Target wall time of one dispatch segment (`pacer`): longer on a software
    /// adapter, which has no watchdog.
    pub fn segment_seconds(&self) -> f64 {
        if self.is_software() {
            super::pacer::SOFTWARE_SEGMENT_SECONDS
        } else {
            super::pacer::SEGMENT_SECONDS
        }
    }

    /// The segment budget last learnt for `kernel`'s steps and the chunk size it was
    /// learnt at, if it ran before.
    pub fn learnt_budget(&self, kernel: &Arc<wgpu::ComputePipeline>) -> Option<(f64, u64)> {
        let key = Arc::as_ptr(kernel) as usize;
        let b = self.budgets.lock().ok()?;
        b.get(&key).map(|(_, budget, at)| (*budget, *at))
    }

    /// Keeps `learnt` = (budget, chunk size) for `kernel`, unless a budget learnt at a
    /// larger chunk is kept already: a call's last, shorter chunk would otherwise hand
    /// the next call's full chunks a budget they never scale back up (`Pacer::chunk`).
    pub fn remember_budget(&self, kernel: &Arc<wgpu::ComputePipeline>, learnt: (f64, u64)) {
        if let Ok(mut b) = self.budgets.lock() {
            let key = Arc::as_ptr(kernel) as usize;
            if b.get(&key).is_none_or(|&(_, _, at)| learnt.1 >= at) {
                b.insert(key, (kernel.clone(), learnt.0, learnt.1));
            }
        }
    }

    pub fn check(&self) -> Result<()> {
        let mut v = self
            .errors
            .lock()
            .map_err(|_| anyhow!("gpu error log poisoned"))?;
        if let Some(e) = v.first().cloned() {
            v.clear();
            bail!("wgpu error: {e}");
        }
        Ok(())
    }

    /// Compiles (or fetches from the cache) the compute pipeline of `src`/`entry`.
    pub fn pipeline(&self, src: &str, entry: &str) -> Result<Arc<wgpu::ComputePipeline>> {
        self.pipeline_in(src, entry, None)
    }

    /// As `pipeline`, with an explicit layout (`tag` names it in the cache key): kernels
    /// whose entry points share one bind group need one layout for all of them, since
    /// an automatic layout holds only the bindings its own entry point uses.
    pub fn pipeline_with_layout(
        &self,
        src: &str,
        entry: &str,
        layout: &wgpu::PipelineLayout,
        tag: &str,
    ) -> Result<Arc<wgpu::ComputePipeline>> {
        self.pipeline_in(src, entry, Some((layout, tag)))
    }

    fn pipeline_in(
        &self,
        src: &str,
        entry: &str,
        layout: Option<(&wgpu::PipelineLayout, &str)>,
    ) -> Result<Arc<wgpu::ComputePipeline>> {
        let tag = layout.map_or(String::new(), |(_, t)| format!("#{t}"));
        let key = (src.to_string(), format!("{entry}{tag}"));
        if let Some(p) = self
            .pipelines
            .lock()
            .map_err(|_| anyhow!("pipeline cache poisoned"))?
            .get(&key)
        {
            return Ok(p.clone());
        }
        let shared = {
            let mut cache = self
                .workgroup
                .lock()
                .map_err(|_| anyhow!("workgroup cache poisoned"))?;
            if !cache.contains_key(src) {
                cache.insert(src.to_string(), workgroup_bytes(src)?);
            }
            cache[src].get(entry).copied()
        }
        .ok_or_else(|| anyhow!("kernel has no entry point `{entry}`"))?;
        let limit = self.limits.max_compute_workgroup_storage_size as u64;
        if shared > limit {
            bail!(
                "kernel `{entry}` needs {shared} bytes of workgroup memory (its `var<workgroup>` \
                 arrays), and this adapter allows {limit}; use --backend cpu"
            );
        }
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some("smflow kernel"),
                source: wgpu::ShaderSource::Wgsl(src.into()),
            });
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some("smflow kernel"),
                layout: layout.map(|(l, _)| l),
                module: &module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            });
        if let Some(e) = pollster::block_on(scope.pop()) {
            bail!("compiling WGSL kernel `{entry}` failed: {e}");
        }
        let p = Arc::new(pipeline);
        self.pipelines
            .lock()
            .map_err(|_| anyhow!("pipeline cache poisoned"))?
            .insert(key, p.clone());
        Ok(p)
    }

    pub fn storage(&self, size: u64, label: &str) -> Result<wgpu::Buffer> {
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let b = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: size.max(16),
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        if let Some(e) = pollster::block_on(scope.pop()) {
            bail!("allocating {size} bytes for {label}: {e}");
        }
        Ok(b)
    }

    pub fn storage_init(&self, data: &[u8], label: &str) -> wgpu::Buffer {
        self.device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: data,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            })
    }

    pub fn uniform(&self, size: u64) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("params"),
            size,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    pub fn readback_buffer(&self, size: u64) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: size.max(16),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// A bind group of `layout` from (binding, buffer) pairs.
    pub fn bind_group(
        &self,
        layout: &wgpu::BindGroupLayout,
        bufs: &[(u32, &wgpu::Buffer)],
    ) -> wgpu::BindGroup {
        let entries: Vec<_> = bufs
            .iter()
            .map(|&(binding, b)| wgpu::BindGroupEntry {
                binding,
                resource: b.as_entire_binding(),
            })
            .collect();
        self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("smflow"),
            layout,
            entries: &entries,
        })
    }

    /// Submits one compute pass of `pipeline` over `groups` workgroups (not waited for).
    pub fn dispatch(&self, pipeline: &wgpu::ComputePipeline, bind: &wgpu::BindGroup, groups: u32) {
        let mut enc = self.device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            pass.set_pipeline(pipeline);
            pass.set_bind_group(0, bind, &[]);
            pass.dispatch_workgroups(groups, 1, 1);
        }
        self.queue.submit([enc.finish()]);
    }

    /// Blocks until all submitted work is done.
    pub fn wait(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| anyhow!("waiting for the GPU: {e}"))?;
        self.check()
    }

    /// Copies `size` bytes of `src` into `staging` (MAP_READ) and returns them.
    pub fn read(&self, src: &wgpu::Buffer, staging: &wgpu::Buffer, size: u64) -> Result<Vec<u8>> {
        let mut enc = self.device.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(src, 0, staging, 0, size);
        self.queue.submit([enc.finish()]);
        let (tx, rx) = mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, 0..size, move |r| {
            let _ = tx.send(r);
        });
        self.wait()?;
        rx.recv()
            .map_err(|_| anyhow!("buffer map callback dropped"))?
            .map_err(|e| anyhow!("mapping a readback buffer: {e}"))?;
        let data = staging
            .get_mapped_range(0..size)
            .map_err(|e| anyhow!("reading a mapped buffer: {e}"))?
            .to_vec();
        staging.unmap();
        Ok(data)
    }
}

/// Bytes of workgroup memory (`var<workgroup>`) each entry point of `src` uses, as
/// WebGPU counts them (each variable's size rounded up to 16). wgpu does not hold this
/// to the device's `max_compute_workgroup_storage_size` (16 KiB in wgpu's defaults,
/// 32 KiB on llvmpipe, 48 KiB on NVIDIA), and a kernel over it fails in the driver or
/// uses memory it does not own, so every pipeline is checked against it, for every
/// engine (`Gpu::pipeline`).
pub fn workgroup_bytes(src: &str) -> Result<HashMap<String, u64>> {
    let module = naga::front::wgsl::parse_str(src)
        .map_err(|e| anyhow!("kernel: {}", e.emit_to_string(src)))?;
    let info = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::all(),
    )
    .validate(&module)
    .map_err(|e| anyhow!("kernel: {}", e.emit_to_string(src)))?;
    let mut layouter = naga::proc::Layouter::default();
    layouter
        .update(module.to_ctx())
        .map_err(|e| anyhow!("kernel: laying out types: {e}"))?;
    Ok(module
        .entry_points
        .iter()
        .enumerate()
        .map(|(i, ep)| {
            // Uses through called functions included (naga merges them).
            let uses = info.get_entry_point(i);
            let bytes = module
                .global_variables
                .iter()
                .filter(|(h, v)| v.space == naga::AddressSpace::WorkGroup && !uses[*h].is_empty())
                .map(|(_, v)| (layouter[v.ty].size as u64).next_multiple_of(16))
                .sum();
            (ep.name.clone(), bytes)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::workgroup_bytes;

    /// Only the workgroup variables an entry point uses count, with their layout size.
    #[test]
    fn workgroup_bytes_counts_the_entry_points_own_variables() {
        let src = "
            var<workgroup> big: array<array<f32, 10>, 64>;
            var<workgroup> small: array<vec4<f32>, 3>;
            @group(0) @binding(0) var<storage, read_write> out: array<f32>;
            @compute @workgroup_size(64)
            fn both(@builtin(local_invocation_index) i: u32) {
                big[i][0] = 1.0;
                small[0].x = 2.0;
                out[i] = big[i][0] + small[0].x + odd_of(i);
            }
            var<workgroup> odd: array<f32, 3>;
            // Reached through a call: counted for `both` (12 bytes, rounded up to 16).
            fn odd_of(i: u32) -> f32 {
                odd[i % 3u] = 1.0;
                return odd[0];
            }
            @compute @workgroup_size(64)
            fn one(@builtin(local_invocation_index) i: u32) {
                small[1].y = 3.0;
                out[i] = small[1].y;
            }
            @compute @workgroup_size(64)
            fn none(@builtin(local_invocation_index) i: u32) {
                out[i] = 0.0;
            }
        ";
        let b = workgroup_bytes(src).unwrap();
        // 64·10 f32 = 2560 bytes; 3 vec4 = 48; an odd size rounds up to 16.
        assert_eq!(b["both"], 64 * 10 * 4 + 3 * 16 + 16);
        assert_eq!(b["one"], 3 * 16);
        assert_eq!(b["none"], 0);
        assert_eq!(b.len(), 3);
    }
}
