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
        .filter(|p| p.extension().is_some_and(|e| e == "wal" || e == "seg"))
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
        // 12 header + 9 prefix bytes per record.
        assert_eq!(wal.persisted_bytes(), 3 * 21 + 5 + 6);
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
    let payload = [7u8; 60]; // 81 bytes a record
    for _ in 0..5 {
        wal.append(Signal::Logs, &payload).unwrap();
    }
    // A segment rolls once it holds 100 bytes or more: {0, 1}, {2, 3}, {4}.
    assert_eq!(segment_files(dir.path()).len(), 3);
    assert_eq!(wal.persisted_bytes(), 5 * 81);
    wal.ack(1).unwrap();
    assert_eq!(segment_files(dir.path()).len(), 3, "record 0 still pending");
    wal.ack(0).unwrap();
    assert_eq!(segment_files(dir.path()).len(), 2);
    assert_eq!(wal.persisted_bytes(), 3 * 81);
    wal.ack(2).unwrap();
    wal.ack(3).unwrap();
    wal.ack(4).unwrap();
    // The segment being written stays until the next roll.
    assert_eq!(segment_files(dir.path()).len(), 1);
    assert_eq!(wal.persisted_bytes(), 81);
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
        wal.lost(),
        Lost {
            records: 1,
            bytes: 21 + 10 - 4
        }
    );
    assert_eq!(
        fs::metadata(&seg).unwrap().len(),
        2 * (21 + 8),
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
fn a_flipped_byte_costs_only_its_record_and_reading_resumes_at_the_next() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (wal, _) = Wal::open(dir.path(), opts(1 << 20, 1 << 16)).unwrap();
        wal.append(Signal::Logs, b"good").unwrap();
        wal.append(Signal::Logs, b"flipped").unwrap();
        wal.append(Signal::Logs, b"behind").unwrap();
        wal.append(Signal::Logs, b"and more").unwrap();
    }
    let seg = segment_files(dir.path()).pop().unwrap();
    let clean = fs::read(&seg).unwrap();
    // A flip anywhere in the second record: marker, length, checksum, sequence or payload.
    let second = 21 + 4;
    for at in second..second + 21 + 7 {
        let mut data = clean.clone();
        data[at] ^= 0x10;
        fs::write(&seg, &data).unwrap();
        let (wal, replay) = Wal::open(dir.path(), opts(1 << 20, 1 << 16)).unwrap();
        assert_eq!(seqs(&replay), vec![0, 2, 3], "flip at {at}");
        assert_eq!(replay[1].payload.as_ref(), b"behind");
        assert_eq!(
            wal.lost(),
            Lost {
                records: 1,
                bytes: 28
            },
            "flip at {at}"
        );
        drop(wal);
    }
    // A flip in the first record of a segment keeps the rest of it.
    let mut data = clean.clone();
    data[14] ^= 0x01;
    fs::write(&seg, &data).unwrap();
    let (wal, replay) = Wal::open(dir.path(), opts(1 << 20, 1 << 16)).unwrap();
    assert_eq!(seqs(&replay), vec![1, 2, 3]);
    assert_eq!(wal.lost().records, 1);
    // New records go on after the damaged ones, and the damage is still skipped.
    assert_eq!(wal.append(Signal::Logs, b"new").unwrap(), 4);
    drop(wal);
    let (_, replay) = Wal::open(dir.path(), opts(1 << 20, 1 << 16)).unwrap();
    assert_eq!(seqs(&replay), vec![1, 2, 3, 4]);
}

#[test]
fn damage_counts_only_unacknowledged_records_and_spans_segments() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (wal, _) = Wal::open(dir.path(), opts(1 << 20, 120)).unwrap();
        // 21 + 40 = 61 bytes a record: two records a segment.
        for i in 0..7u8 {
            wal.append(Signal::Logs, &[i; 40]).unwrap();
        }
        wal.ack(1).unwrap();
    }
    let files = segment_files(dir.path());
    assert_eq!(files.len(), 4);
    // Record 1 (acknowledged) and record 2 (not) damaged; records 4 and 5 cut to nothing.
    let flip = |f: &Path, at: usize| {
        let mut data = fs::read(f).unwrap();
        data[at] ^= 0xff;
        fs::write(f, &data).unwrap();
    };
    flip(&files[0], 61 + 30);
    flip(&files[1], 30);
    fs::write(&files[2], b"").unwrap();
    let (wal, replay) = Wal::open(dir.path(), opts(1 << 20, 120)).unwrap();
    assert_eq!(seqs(&replay), vec![0, 3, 6]);
    assert_eq!(
        wal.lost(),
        Lost {
            records: 3,
            bytes: 2 * 61
        },
        "the damaged acknowledged record costs nothing; the emptied file two records"
    );
}

#[test]
fn segments_of_the_old_format_are_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut old = Vec::new();
    for (seq, payload) in [(0u64, &b"old zero"[..]), (1, b"old one")] {
        let mut body = seq.to_le_bytes().to_vec();
        body.push(0);
        body.extend_from_slice(payload);
        old.extend_from_slice(&(body.len() as u32).to_le_bytes());
        old.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        old.extend_from_slice(&body);
    }
    fs::write(dir.path().join(format!("{:020}.seg", 0)), &old).unwrap();
    {
        let (wal, replay) = Wal::open(dir.path(), opts(1 << 20, 1 << 16)).unwrap();
        assert_eq!(seqs(&replay), vec![0, 1]);
        assert_eq!(replay[1].payload.as_ref(), b"old one");
        assert_eq!(wal.append(Signal::Logs, b"new two").unwrap(), 2);
        wal.ack(0).unwrap();
    }
    let (wal, replay) = Wal::open(dir.path(), opts(1 << 20, 1 << 16)).unwrap();
    assert_eq!(seqs(&replay), vec![1, 2]);
    wal.ack(1).unwrap();
    assert_eq!(
        segment_files(dir.path())
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "seg"))
            .count(),
        0,
        "the old segment is deleted once drained"
    );
}

#[test]
fn truncation_anywhere_loses_only_what_was_cut() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (wal, _) = Wal::open(dir.path(), opts(1 << 20, 1 << 16)).unwrap();
        for i in 0..10u8 {
            wal.append(Signal::Logs, &[i; 30]).unwrap();
        }
    }
    let seg = segment_files(dir.path()).pop().unwrap();
    let clean = fs::read(&seg).unwrap();
    assert_eq!(clean.len(), 10 * 51);
    for cut in (0..clean.len()).step_by(7) {
        fs::write(&seg, &clean[..cut]).unwrap();
        let (wal, replay) = Wal::open(dir.path(), opts(1 << 20, 1 << 16)).unwrap();
        let whole = (cut / 51) as u64;
        assert_eq!(
            seqs(&replay),
            (0..whole).collect::<Vec<_>>(),
            "cut at {cut}"
        );
        let torn = cut % 51 != 0;
        assert_eq!(wal.lost().records, u64::from(torn), "cut at {cut}");
        drop(wal);
        if whole > 0 {
            assert_eq!(fs::metadata(&seg).unwrap().len(), whole * 51);
        }
    }
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
    // Files 0 and 5 say records 0..=5 were written; none could be read.
    assert_eq!(
        wal.lost(),
        Lost {
            records: 6,
            bytes: 16
        }
    );
    assert_eq!(wal.append(Signal::Logs, b"ok").unwrap(), 5);
}

#[test]
fn full_budget_refuses_until_records_are_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(dir.path(), opts(3 * 121, 121)).unwrap();
    let payload = [1u8; 100]; // 121 bytes a record
    for seq in 0..3 {
        assert_eq!(wal.append(Signal::Logs, &payload).unwrap(), seq);
    }
    let err = wal.append(Signal::Logs, &payload).unwrap_err();
    assert!(
        matches!(
            err,
            WalError::Full {
                used: 363,
                budget: 363,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("is full (363 of 363 bytes in use)"),
        "{err}"
    );
    wal.ack(0).unwrap();
    assert_eq!(wal.append(Signal::Logs, &payload).unwrap(), 3);
    let err = wal.append(Signal::Logs, &[0u8; 400]).unwrap_err();
    assert!(
        matches!(
            err,
            WalError::TooLarge {
                size: 421,
                budget: 363
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

#[test]
fn out_of_order_acknowledgements_survive_several_restarts_as_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let opts = |max, seg| WalOptions {
        fsync: FsyncPolicy::Never,
        ..opts(max, seg)
    };
    {
        let (wal, _) = Wal::open(dir.path(), opts(1 << 20, 1 << 16)).unwrap();
        for i in 0..4_200u32 {
            wal.append(Signal::Logs, &i.to_le_bytes()).unwrap();
        }
        // Record 0 is stuck; 4,198 others are delivered, more than the 4,096 stretches the
        // cursor holds if it kept single numbers.
        for seq in 1..4_200 {
            if seq != 2_000 {
                wal.ack(seq).unwrap();
            }
        }
    }
    for _ in 0..2 {
        let (_, replay) = Wal::open(dir.path(), opts(1 << 20, 1 << 16)).unwrap();
        assert_eq!(seqs(&replay), vec![0, 2_000]);
    }
}

#[test]
fn the_ack_cursor_of_the_earlier_format_is_read() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (wal, _) = Wal::open(dir.path(), opts(1 << 20, 1 << 16)).unwrap();
        for i in 0..5u8 {
            wal.append(Signal::Logs, &[i]).unwrap();
        }
    }
    // floor 1, acknowledged above it: 3.
    let mut old = Vec::new();
    old.extend_from_slice(&1u64.to_le_bytes());
    old.extend_from_slice(&1u32.to_le_bytes());
    old.extend_from_slice(&3u64.to_le_bytes());
    let crc = crc32fast::hash(&old);
    old.extend_from_slice(&crc.to_le_bytes());
    fs::write(dir.path().join("ack"), &old).unwrap();
    let (_, replay) = Wal::open(dir.path(), opts(1 << 20, 1 << 16)).unwrap();
    assert_eq!(seqs(&replay), vec![1, 2, 4]);
}

#[test]
fn the_queue_directory_and_every_file_in_it_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("queue");
    let (wal, _) = Wal::open(&dir, opts(1 << 20, 64)).unwrap();
    for i in 0..8u8 {
        wal.append(Signal::Logs, &[i; 40]).unwrap();
    }
    wal.ack(1).unwrap();
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    let files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    // Several segments, the lock and the ack cursor.
    assert!(files.len() >= 4, "{files:?}");
    assert!(files.iter().any(|p| p.ends_with("ack")), "{files:?}");
    for f in &files {
        assert_eq!(mode(f), 0o600, "{}", f.display());
    }
}
