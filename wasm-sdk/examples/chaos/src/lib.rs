//! A test module that misbehaves on purpose, so the host's fail-open handling can be tested
//! against a real SDK-built guest. `config.mode` picks the failure for every batch:
//! `panic`, `error` (returns the error code), `alloc` (allocates without bound), `loop`
//! (spins forever), or `count` (keeps every record but logs how many batches it saw, so a
//! test can tell a fresh instance from a reused one).

use weir_wasm_sdk::{export, log, Error, Level, Logs, Processor};

struct Chaos {
    mode: String,
    batches: u64,
}

impl Processor for Chaos {
    fn init(config: &weir_wasm_sdk::serde_json::Value) -> Result<Self, Error> {
        Ok(Chaos {
            mode: config["mode"].as_str().unwrap_or("count").to_string(),
            batches: 0,
        })
    }

    fn process_logs(&mut self, logs: &mut Logs<'_>) -> Result<(), Error> {
        self.batches += 1;
        match self.mode.as_str() {
            "panic" => panic!("chaos: panic on batch {}", self.batches),
            "error" => Err(Error::new("chaos: refusing this batch")),
            "alloc" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1; 1 << 20]);
                    if hoard.len() == usize::MAX {
                        return Ok(());
                    }
                }
            }
            "loop" => {
                let mut n = 0u64;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                    if n == u64::MAX {
                        return Ok(());
                    }
                }
            }
            _ => {
                let n = logs.len()?;
                log(
                    Level::Info,
                    &format!(
                        "chaos: batch {} of this instance, {n} records",
                        self.batches
                    ),
                );
                Ok(())
            }
        }
    }
}

export!(Chaos);
