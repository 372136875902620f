//! Resume for the finite-data experiments: a `Trainer` that wraps the real one and
//! treats each `train` call as a job of `output::job_progress`. A call that an
//! interrupted run finished is replayed from its saved rows (f64 bit patterns, so the
//! experiment sees exactly the numbers it saw then); any other call trains and saves
//! its rows before returning. The experiments call the trainer in a fixed order, so
//! call i of a resumed run is call i of the interrupted one; each saved call also
//! records what it was (dynamics, η, stream, replicas, checkpoints), checked on replay.
//! It lives in `cli` because it writes the run's progress files.

use crate::backend::rows::{Block, RowEngine, RowSink};
use crate::output::job_progress::{Done, Store};
use crate::train::{TrainJob, Trainer};
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::ops::Range;

/// Rows of one call: per checkpoint, the rows of every replica in order, as f64 bits.
pub type Rows = Vec<Vec<u64>>;

pub struct Replay<'a> {
    inner: &'a dyn Trainer,
    done: RefCell<Vec<Option<Done<Rows>>>>,
    store: RefCell<&'a mut Store>,
    next: Cell<usize>,
}

impl<'a> Replay<'a> {
    pub fn new(
        inner: &'a dyn Trainer,
        done: Vec<Option<Done<Rows>>>,
        store: &'a mut Store,
    ) -> Self {
        Replay {
            inner,
            done: RefCell::new(done),
            store: RefCell::new(store),
            next: Cell::new(0),
        }
    }
}

/// What a call is, as saved and checked on replay.
fn what(job: &TrainJob, replicas: &Range<u64>) -> Value {
    json!({
        "dynamics": job.dynamics.name(),
        "eta": job.eta,
        "stream": job.stream,
        "replicas": [replicas.start, replicas.end],
        "checkpoints": job.checkpoints,
        "row_len": job.row_len(),
    })
}

impl RowEngine<TrainJob> for Replay<'_> {
    crate::backend::delegate_identity!(inner);

    fn run(&self, job: &TrainJob, replicas: Range<u64>, sink: RowSink) -> anyhow::Result<()> {
        let i = self.next.get();
        self.next.set(i + 1);
        let w = what(job, &replicas);
        let saved = self.done.borrow_mut().get_mut(i).and_then(Option::take);
        if let Some(d) = saved {
            anyhow::ensure!(
                d.what == w,
                "--resume: saved job {i} was {}, this run's job {i} is {w}",
                d.what
            );
            anyhow::ensure!(
                d.result.len() == job.checkpoints.len(),
                "--resume: saved job {i} has {} checkpoints, the job {}",
                d.result.len(),
                job.checkpoints.len()
            );
            for (c, bits) in d.result.iter().enumerate() {
                let rows: Vec<f64> = bits.iter().map(|&b| f64::from_bits(b)).collect();
                sink(Block::rows(c, replicas.start, &rows));
            }
            return Ok(());
        }
        let mut rows: Rows = vec![Vec::new(); job.checkpoints.len()];
        self.inner
            .train(job, replicas.clone(), &mut |c, first, r| {
                rows[c].extend(r.iter().map(|x| x.to_bits()));
                sink(Block::rows(c, first, r));
            })?;
        self.store.borrow_mut().save(i, &w, &rows)
    }
}
