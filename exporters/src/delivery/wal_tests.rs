use super::*;

fn opts(max_bytes: u64, segment_bytes: u64) -> WalOptions {
    WalOptions {
        max_bytes,
        segment_bytes,
        fsync: FsyncPolicy::Always,
    }
}

fn seqs(r: &[Replayed]) -> Vec<u64> {
    r.iter().map(|r| r.seq).collect()
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    v.sort();
    v
}

#[test]
fn records_survive_reopen_in_order_with_their_signal_and_bytes() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (wal, replay) = Wal::open(dir.path(), opts(1 << 20, 1 << 16)).unwrap();
        assert!(replay.is_empty());
        assert_eq!(wal.append(Signal::Logs, b"first").unwrap(), 0);
        assert_eq!(wal.append(Signal::Traces, b"second").unwrap(), 1);
        assert_eq!(wal.append(Signal::Metrics, b"").unwrap(), 2);
        assert_eq!(wal.pending(), 3);
        // 8 header + 9 prefix bytes per record.
        assert_eq!(wal.persisted_bytes(), 3 * 17 + 5 + 6);
    }
    let (wal, replay) = Wal::open(dir.path(), opts(1 << 20, 1 << 16)).unwrap();
    assert_eq!(
        replay,
        vec![
            Replayed {
                seq: 0,
                signal: Signal::Logs,
                payload: Bytes::from_static(b"first")
            },
            Replayed {
                seq: 1,
                signal: Signal::Traces,
                payload: Bytes::from_static(b"second")
            },
            Replayed {
                seq: 2,
                signal: Signal::Metrics,
                payload: Bytes::new()
            },
        ]
    );
    // New records continue the numbering.
    assert_eq!(wal.append(Signal::Logs, b"x").unwrap(), 3);
}

#[test]
fn acknowledged_records_are_not_replayed_even_out_of_order() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (wal, _) = Wal::open(dir.path(), opts(1 << 20, 1 << 16)).unwrap();
        for i in 0..6u8 {
            wal.append(Signal::Logs, &[i]).unwrap();
        }
        wal.ack(0).unwrap();
        wal.ack(3).unwrap();
        wal.ack(5).unwrap();
        assert_eq!(wal.pending(), 3);
    }
    let (wal, replay) = Wal::open(dir.path(), opts(1 << 20, 1 << 16)).unwrap();
    assert_eq!(seqs(&replay), vec![1, 2, 4]);
    assert_eq!(replay[1].payload.as_ref(), &[2u8]);
    wal.ack(1).unwrap();
    wal.ack(2).unwrap();
    wal.ack(4).unwrap();
    drop(wal);
    let (wal, replay) = Wal::open(dir.path(), opts(1 << 20, 1 << 16)).unwrap();
    assert!(replay.is_empty());
    assert_eq!(wal.persisted_bytes(), 0);
    assert_eq!(wal.append(Signal::Logs, b"y").unwrap(), 6);
}

#[test]
fn segments_are_deleted_once_fully_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(dir.path(), opts(1 << 20, 100)).unwrap();
    let payload = [7u8; 60]; // 77 bytes a record
    for _ in 0..5 {
        wal.append(Signal::Logs, &payload).unwrap();
    }
    // A segment rolls once it holds 100 bytes or more: {0, 1}, {2, 3}, {4}.
    assert_eq!(segment_files(dir.path()).len(), 3);
    assert_eq!(wal.persisted_bytes(), 5 * 77);
    wal.ack(1).unwrap();
    assert_eq!(segment_files(dir.path()).len(), 3, "record 0 still pending");
    wal.ack(0).unwrap();
    assert_eq!(segment_files(dir.path()).len(), 2);
    assert_eq!(wal.persisted_bytes(), 3 * 77);
    wal.ack(2).unwrap();
    wal.ack(3).unwrap();
    wal.ack(4).unwrap();
    // The segment being written stays until the next roll.
    assert_eq!(segment_files(dir.path()).len(), 1);
    assert_eq!(wal.persisted_bytes(), 77);
    assert_eq!(wal.pending(), 0);
}

#[test]
fn torn_tail_is_skipped_and_cut_off_and_earlier_records_kept() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (wal, _) = Wal::open(dir.path(), opts(1 << 20, 1 << 16)).unwrap();
        wal.append(Signal::Logs, b"kept one").unwrap();
        wal.append(Signal::Logs, b"kept two").unwrap();
        wal.append(Signal::Logs, b"torn three").unwrap();
    }
    let seg = segment_files(dir.path()).pop().unwrap();
    let full = fs::metadata(&seg).unwrap().len();
    // A crash in the middle of the third record's write.
    OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(full - 4)
        .unwrap();
    let (wal, replay) = Wal::open(dir.path(), opts(1 << 20, 1 << 16)).unwrap();
    assert_eq!(seqs(&replay), vec![0, 1]);
    assert_eq!(replay[1].payload.as_ref(), b"kept two");
    assert_eq!(
        fs::metadata(&seg).unwrap().len(),
        2 * (17 + 8),
        "torn tail cut off"
    );
    // The sequence number of the lost record is reused: it was never acknowledged to anyone.
    assert_eq!(wal.append(Signal::Logs, b"after").unwrap(), 2);
    drop(wal);
    let (_, replay) = Wal::open(dir.path(), opts(1 << 20, 1 << 16)).unwrap();
    assert_eq!(seqs(&replay), vec![0, 1, 2]);
    assert_eq!(replay[2].payload.as_ref(), b"after");
}

#[test]
fn corrupt_record_fails_its_checksum_and_ends_the_segment() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (wal, _) = Wal::open(dir.path(), opts(1 << 20, 1 << 16)).unwrap();
        wal.append(Signal::Logs, b"good").unwrap();
        wal.append(Signal::Logs, b"flipped").unwrap();
        wal.append(Signal::Logs, b"behind").unwrap();
    }
    let seg = segment_files(dir.path()).pop().unwrap();
    let mut data = fs::read(&seg).unwrap();
    let second_payload = 17 + 4 + 17; // first record, then header + prefix of the second
    data[second_payload] ^= 0xff;
    fs::write(&seg, &data).unwrap();
    let (_, replay) = Wal::open(dir.path(), opts(1 << 20, 1 << 16)).unwrap();
    assert_eq!(seqs(&replay), vec![0]);
    assert_eq!(replay[0].payload.as_ref(), b"good");
}

#[test]
fn garbage_length_does_not_panic() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join(segment_name(0)), [0xff; 7]).unwrap();
    fs::write(
        dir.path().join(segment_name(5)),
        [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 1],
    )
    .unwrap();
    fs::write(dir.path().join("ack"), [1, 2, 3]).unwrap();
    let (wal, replay) = Wal::open(dir.path(), opts(1 << 20, 1 << 16)).unwrap();
    assert!(replay.is_empty());
    assert_eq!(wal.append(Signal::Logs, b"ok").unwrap(), 0);
}

#[test]
fn full_budget_refuses_until_records_are_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(dir.path(), opts(3 * 117, 117)).unwrap();
    let payload = [1u8; 100]; // 117 bytes a record
    for seq in 0..3 {
        assert_eq!(wal.append(Signal::Logs, &payload).unwrap(), seq);
    }
    let err = wal.append(Signal::Logs, &payload).unwrap_err();
    assert!(
        matches!(
            err,
            WalError::Full {
                used: 351,
                budget: 351,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("is full (351 of 351 bytes in use)"),
        "{err}"
    );
    wal.ack(0).unwrap();
    assert_eq!(wal.append(Signal::Logs, &payload).unwrap(), 3);
    let err = wal.append(Signal::Logs, &[0u8; 400]).unwrap_err();
    assert!(
        matches!(
            err,
            WalError::TooLarge {
                size: 417,
                budget: 351
            }
        ),
        "{err}"
    );
}

#[test]
fn a_second_open_of_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_wal, _) = Wal::open(dir.path(), opts(1 << 20, 1 << 16)).unwrap();
    let err = Wal::open(dir.path(), opts(1 << 20, 1 << 16)).err().unwrap();
    assert!(matches!(err, WalError::Locked { .. }), "{err}");
}
