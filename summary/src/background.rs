//! The summariser off the data path: [`Background`] summarises batches on a thread of its
//! own, at the lowest CPU priority of the process, so that the data path (receivers,
//! processors, exporters) has the CPU first and never waits for a summary.
//!
//! Batches wait in a short bounded queue. When the queue is full (the CPU is saturated and
//! the data path keeps it busy), a batch is *counted* instead of read: per service, its
//! items and encoded bytes go into the signal's `volume` and `unsummarised`
//! ([`crate::summary::LogsSummary::unsummarised`]), which costs a walk over the request's
//! framing and nothing per item. So a summary's volumes stay exact whatever the load, and
//! it says how much of them its templates, severities, attributes and names describe.
//! While the edge has CPU to spare, nothing waits long in the queue and every item is read.
//!
//! The queue holds at most [`QUEUE_BATCHES`] batches (their bytes are shared with the data
//! path, so no copy is made). [`Background::finish`] summarises what is queued and stops
//! the thread (shutdown: the last flush then holds everything that was submitted).

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Sender, TrySendError};
use weir_api::{Batch, Counter, PerSignal};

use crate::handle::MetadataHandle;

/// Batches that may wait for the summariser.
pub const QUEUE_BATCHES: usize = 16;

/// What the summarising thread is told.
enum Job {
    Batch(Batch),
    /// Answered once every batch sent before it is summarised.
    Sync(Sender<()>),
    /// Tests: the thread says it stopped, then waits to be resumed (a busy summariser).
    #[cfg(test)]
    Pause {
        paused: Sender<()>,
        resume: crossbeam_channel::Receiver<()>,
    },
}

/// Items summarised and items counted unsummarised, per signal (the owner's
/// `weir_catalog_summarised_items` / `weir_catalog_unsummarised_items`).
#[derive(Clone, Default)]
pub struct BackgroundCounters {
    /// Items read by the summariser.
    pub summarised: PerSignal<Counter>,
    /// Items counted without being read (the queue was full).
    pub unsummarised: PerSignal<Counter>,
}

/// A [`MetadataHandle`] fed through a low-priority thread (see the module docs).
pub struct Background {
    handle: Arc<MetadataHandle>,
    counters: BackgroundCounters,
    tx: Mutex<Option<Sender<Job>>>,
    /// The queue's other end, for `finish` to empty on the caller's thread.
    rx: crossbeam_channel::Receiver<Job>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Background {
    /// Starts the summarising thread (`weir-summarise`) for `handle`.
    pub fn start(
        handle: Arc<MetadataHandle>,
        counters: BackgroundCounters,
    ) -> std::io::Result<Self> {
        let (tx, rx) = bounded::<Job>(QUEUE_BATCHES);
        let (h, c) = (handle.clone(), counters.clone());
        let queue = rx.clone();
        let thread = std::thread::Builder::new()
            .name("weir-summarise".into())
            .spawn(move || {
                lower_priority();
                for batch in queue.into_iter().filter_map(Job::into_batch) {
                    read(&h, &c, &batch);
                }
            })?;
        Ok(Background {
            handle,
            counters,
            tx: Mutex::new(Some(tx)),
            rx,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Hands `batch` to the summarising thread; never waits. When its queue is full, the
    /// batch is counted as unsummarised (its volume per service) on the calling thread;
    /// after [`Background::finish`], it is summarised on the calling thread.
    pub fn submit(&self, batch: Batch) {
        let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let Some(tx) = tx else {
            self.summarise_here(&batch);
            return;
        };
        match tx.try_send(Job::Batch(batch)) {
            Ok(()) => {}
            Err(TrySendError::Full(Job::Batch(b))) => {
                self.handle.count_unsummarised(&b);
                self.counters.unsummarised[b.signal()].inc_by(b.item_count() as u64);
            }
            Err(TrySendError::Disconnected(Job::Batch(b))) => self.summarise_here(&b),
            Err(_) => {}
        }
    }

    fn summarise_here(&self, batch: &Batch) {
        read(&self.handle, &self.counters, batch);
    }

    /// Waits until every batch submitted before this call is summarised (tests, and a
    /// flush that wants the queue in).
    pub fn sync(&self) {
        let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(tx) = tx {
            let (done_tx, done_rx) = bounded(1);
            if tx.send(Job::Sync(done_tx)).is_ok() {
                let _ = done_rx.recv();
            }
        }
    }

    /// Summarises what is queued (on the caller's thread, beside the summarising thread,
    /// which may be slow to get the CPU), then stops the thread; later batches are
    /// summarised on the caller's thread.
    pub fn finish(&self) {
        drop(self.tx.lock().unwrap_or_else(|e| e.into_inner()).take());
        for batch in self.rx.try_iter().filter_map(Job::into_batch) {
            self.summarise_here(&batch);
        }
        if let Some(t) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = t.join();
        }
    }
}

impl Job {
    /// The batch of a batch job; a control job is answered here and gives `None`.
    fn into_batch(self) -> Option<Batch> {
        match self {
            Job::Batch(b) => Some(b),
            Job::Sync(done) => {
                let _ = done.send(());
                None
            }
            #[cfg(test)]
            Job::Pause { paused, resume } => {
                let _ = paused.send(());
                let _ = resume.recv();
                None
            }
        }
    }
}

/// Reads `batch` into `h`. A panic (a bug, not an input: every input is read or refused)
/// leaves the batch counted unread, and the caller goes on with the next.
fn read(h: &MetadataHandle, c: &BackgroundCounters, batch: &Batch) {
    let n = batch.item_count() as u64;
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| h.observe(batch))).is_ok() {
        c.summarised[batch.signal()].inc_by(n);
    } else {
        tracing::error!("the summariser panicked on a batch; it is counted unread");
        h.count_unsummarised(batch);
        c.unsummarised[batch.signal()].inc_by(n);
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Puts the calling thread at the lowest scheduling priority (nice 19; Linux schedules
/// threads apart, so the rest of the process keeps its own). Elsewhere, or when refused,
/// the thread keeps its priority (and the queue bound still holds).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        let tid = rustix::thread::gettid();
        if let Err(e) = rustix::process::setpriority_process(Some(tid), 19) {
            tracing::debug!(error = %e, "could not lower the summariser's priority");
        }
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use weir_api::otlp::collector::logs::v1::ExportLogsServiceRequest;
    use weir_api::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
    use weir_api::otlp::common::v1::{any_value, AnyValue, KeyValue};
    use weir_api::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use weir_api::otlp::metrics::v1::{
        metric, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    };
    use weir_api::otlp::resource::v1::Resource;
    use weir_api::Signal;

    use super::*;
    use crate::handle::MetadataConfig;

    fn service(name: &str) -> Option<Resource> {
        Some(Resource {
            attributes: vec![KeyValue {
                key: "service.name".into(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::StringValue(name.into())),
                }),
                ..Default::default()
            }],
            ..Default::default()
        })
    }

    /// Records of `per` services: "checkout" gets `n`, "cart" gets `n / 2`.
    fn logs(seed: u64, n: usize) -> Batch {
        let record = |i: usize| LogRecord {
            severity_number: 9,
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue(format!(
                    "order {} took {} ms",
                    seed * 1000 + i as u64,
                    i % 97
                ))),
            }),
            ..Default::default()
        };
        let req = ExportLogsServiceRequest {
            resource_logs: [("checkout", n), ("cart", n / 2)]
                .iter()
                .map(|(name, k)| ResourceLogs {
                    resource: service(name),
                    scope_logs: vec![ScopeLogs {
                        log_records: (0..*k).map(record).collect(),
                        ..Default::default()
                    }],
                    ..Default::default()
                })
                .collect(),
        };
        Batch::decode(Signal::Logs, req.encode_to_vec().into()).unwrap()
    }

    fn point(v: f64) -> NumberDataPoint {
        NumberDataPoint {
            value: Some(weir_api::otlp::metrics::v1::number_data_point::Value::AsDouble(v)),
            ..Default::default()
        }
    }

    fn metrics() -> Batch {
        let gauge = Metric {
            name: "cpu".into(),
            data: Some(metric::Data::Gauge(Gauge {
                data_points: vec![point(1.0), point(2.0), point(3.0)],
            })),
            ..Default::default()
        };
        let sum = Metric {
            name: "requests".into(),
            data: Some(metric::Data::Sum(Sum {
                data_points: vec![point(4.0)],
                ..Default::default()
            })),
            ..Default::default()
        };
        let req = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: service("checkout"),
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![gauge, sum],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        Batch::decode(Signal::Metrics, req.encode_to_vec().into()).unwrap()
    }

    fn pause(bg: &Background) -> Sender<()> {
        let (paused_tx, paused_rx) = bounded(1);
        let (resume_tx, resume_rx) = bounded(1);
        let tx = bg.tx.lock().unwrap().clone().unwrap();
        tx.send(Job::Pause {
            paused: paused_tx,
            resume: resume_rx,
        })
        .unwrap();
        paused_rx.recv().unwrap();
        resume_tx
    }

    #[test]
    fn a_busy_summariser_counts_what_it_cannot_read_and_volumes_stay_exact() {
        let handle = Arc::new(MetadataHandle::new(&MetadataConfig::default()));
        let counters = BackgroundCounters::default();
        let bg = Background::start(handle.clone(), counters.clone()).unwrap();
        // The thread is busy: the queue takes QUEUE_BATCHES, the rest is counted.
        let resume = pause(&bg);
        let extra = 5;
        let batches: Vec<Batch> = (0..QUEUE_BATCHES + extra)
            .map(|i| logs(i as u64, 40))
            .collect();
        for b in &batches {
            bg.submit(b.clone());
        }
        bg.submit(metrics());
        resume.send(()).unwrap();
        bg.sync();
        let got = handle.take();

        // What summarising everything on one thread gives.
        let all = MetadataHandle::new(&MetadataConfig::default());
        for b in &batches {
            all.observe(b);
        }
        all.observe(&metrics());
        let want = all.take();
        let counted = MetadataHandle::new(&MetadataConfig::default());
        for b in &batches[QUEUE_BATCHES..] {
            counted.observe(b);
        }
        counted.observe(&metrics());
        let unread = counted.take();

        for name in ["checkout", "cart"] {
            let (g, w, u) = (
                &got.services[name],
                &want.services[name],
                &unread.services[name],
            );
            assert_eq!(g.logs.volume, w.logs.volume, "{name}");
            assert_eq!(g.logs.unsummarised, u.logs.volume, "{name}");
            let read: u64 = g.logs.templates.values().map(|t| t.count).sum();
            assert_eq!(read, w.logs.volume.items - u.logs.volume.items, "{name}");
            assert_eq!(g.logs.severity.total(), read, "{name}");
        }
        let (g, w) = (
            &got.services["checkout"].metrics,
            &want.services["checkout"].metrics,
        );
        assert_eq!(g.volume, w.volume);
        assert_eq!(g.volume.items, 4);
        assert_eq!(g.unsummarised, w.volume);
        assert!(g.metrics.is_empty());
        // Counted batches keep their receive times (a catalog's window covers them).
        assert!(!got.services["checkout"].unsummarised_seen.is_never());
        assert!(got.services["checkout"].unsummarised_seen.last_unix_nano > 0);
        assert_eq!(
            counters.summarised[Signal::Logs].get(),
            QUEUE_BATCHES as u64 * 60
        );
        assert_eq!(counters.unsummarised[Signal::Logs].get(), extra as u64 * 60);
        assert_eq!(counters.unsummarised[Signal::Metrics].get(), 4);
        // A summary with unsummarised parts is one a catalog accepts.
        assert_eq!(
            crate::validate::validate(&got, &crate::validate::SummaryLimits::default()),
            []
        );
    }

    #[test]
    fn with_room_everything_is_read_and_finish_drains_the_queue() {
        let handle = Arc::new(MetadataHandle::new(&MetadataConfig::default()));
        let bg = Background::start(handle.clone(), BackgroundCounters::default()).unwrap();
        let resume = pause(&bg);
        for i in 0..QUEUE_BATCHES {
            bg.submit(logs(i as u64, 10));
        }
        resume.send(()).unwrap();
        bg.finish();
        // After finish, batches are summarised on the caller's thread.
        bg.submit(logs(99, 10));
        let got = handle.take();
        let l = &got.services["checkout"].logs;
        assert_eq!(l.volume.items, (QUEUE_BATCHES as u64 + 1) * 10);
        assert!(l.unsummarised.is_zero());
        let read: u64 = l.templates.values().map(|t| t.count).sum();
        assert_eq!(read, l.volume.items);
    }
}
