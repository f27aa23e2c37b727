// A Weir WASM processor in AssemblyScript, implementing ABI version 1 (wasm-sdk/ABI.md)
// directly, without the Rust SDK: drops log records whose severity_number is below
// `min_severity` (default 9); records without a severity (0) are kept. It walks the
// ExportLogsServiceRequest protobuf bytes in place and answers with one verdict byte per
// record in canonical order, "unchanged" (0) when it keeps everything.

@external("weir", "weir_output")
declare function weir_output(ptr: i32, len: i32): void;

@external("weir", "weir_log")
declare function weir_log(level: i32, ptr: i32, len: i32): void;

const LEVEL_ERROR: i32 = 4;

// The buffer weir_alloc hands out (grown, never shrunk) and the verdict buffer.
let inPtr: usize = 0;
let inCap: usize = 0;
let outPtr: usize = 0;
let outCap: usize = 0;
let outLen: usize = 0;

let minSeverity: u64 = 9;

// The protobuf field last read by nextField.
let bad = false;
let fNum: u32 = 0;
let fType: u32 = 0;
let fValue: u64 = 0; // varint value, or the length of a length-delimited field
let fStart: usize = 0; // where a length-delimited field's bytes start

function readVarint(p: usize, end: usize): usize {
  let out: u64 = 0;
  let shift: u64 = 0;
  while (true) {
    if (p >= end || shift > 63) {
      bad = true;
      return end;
    }
    const b = load<u8>(p);
    p++;
    out |= (<u64>(b & 0x7f)) << shift;
    if (b < 0x80) break;
    shift += 7;
  }
  fValue = out;
  return p;
}

// Reads the field at p (below end) into fNum/fType/fValue/fStart; returns where the next
// field starts. Sets `bad` on malformed input.
function nextField(p: usize, end: usize): usize {
  p = readVarint(p, end);
  if (bad) return end;
  fNum = <u32>(fValue >> 3);
  fType = <u32>(fValue & 7);
  if (fType == 0) {
    return readVarint(p, end);
  }
  if (fType == 1 || fType == 5) {
    const n: usize = fType == 1 ? 8 : 4;
    if (end - p < n) {
      bad = true;
      return end;
    }
    return p + n;
  }
  if (fType == 2) {
    p = readVarint(p, end);
    if (bad) return end;
    if (fValue > <u64>(end - p)) {
      bad = true;
      return end;
    }
    fStart = p;
    return p + <usize>fValue;
  }
  bad = true;
  return end;
}

function pushVerdict(keep: bool): void {
  if (outLen == outCap) {
    const cap: usize = outCap == 0 ? 256 : outCap * 2;
    outPtr = outCap == 0 ? heap.alloc(cap) : heap.realloc(outPtr, cap);
    outCap = cap;
  }
  store<u8>(outPtr + outLen, keep ? 1 : 0);
  outLen++;
}

function severityOf(p: usize, end: usize): u64 {
  let severity: u64 = 0;
  while (p < end && !bad) {
    p = nextField(p, end);
    if (fNum == 2 && fType == 0) severity = fValue;
  }
  return severity;
}

function logError(message: string): void {
  const bytes = String.UTF8.encode(message);
  weir_log(LEVEL_ERROR, <i32>changetype<usize>(bytes), bytes.byteLength);
}

export function weir_abi_version(): i32 {
  return 1;
}

export function weir_alloc(len: i32): i32 {
  if (len < 0) return 0;
  const want: usize = len < 16 ? 16 : <usize>len;
  if (want > inCap) {
    inPtr = inCap == 0 ? heap.alloc(want) : heap.realloc(inPtr, want);
    inCap = want;
  }
  return <i32>inPtr;
}

// The config is JSON; this module reads one key, `"min_severity": <0..24>`.
export function weir_init(ptr: i32, len: i32): i32 {
  minSeverity = 9;
  if (len == 0) return 0;
  const text = String.UTF8.decodeUnsafe(<usize>ptr, <usize>len);
  const key = text.indexOf('"min_severity"');
  if (key < 0) return 0;
  let i = key + 14;
  while (i < text.length && (text.charCodeAt(i) == 32 || text.charCodeAt(i) == 58)) i++;
  let value: u64 = 0;
  let digits = 0;
  while (i < text.length && text.charCodeAt(i) >= 48 && text.charCodeAt(i) <= 57 && digits < 3) {
    value = value * 10 + <u64>(text.charCodeAt(i) - 48);
    digits++;
    i++;
  }
  if (digits == 0 || value > 24) {
    logError("min_severity must be a whole number 0..24");
    return 1;
  }
  minSeverity = value;
  return 0;
}

export function weir_process_logs(ptr: i32, len: i32): i32 {
  bad = false;
  outLen = 0;
  let dropped = false;
  const end: usize = <usize>ptr + <usize>len;
  let p: usize = <usize>ptr;
  // Request field 1: resource entries; their field 2: scope entries; their field 2: records.
  while (p < end && !bad) {
    p = nextField(p, end);
    if (fNum != 1 || fType != 2) continue;
    let r = fStart;
    const rEnd = r + <usize>fValue;
    while (r < rEnd && !bad) {
      r = nextField(r, rEnd);
      if (fNum != 2 || fType != 2) continue;
      let s = fStart;
      const sEnd = s + <usize>fValue;
      while (s < sEnd && !bad) {
        s = nextField(s, sEnd);
        if (fNum != 2 || fType != 2) continue;
        const recordEnd = fStart + <usize>fValue;
        const severity = severityOf(fStart, recordEnd);
        const keep = severity == 0 || severity >= minSeverity;
        if (!keep) dropped = true;
        pushVerdict(keep);
      }
    }
  }
  if (bad) {
    logError("malformed protobuf in batch");
    return -1;
  }
  if (!dropped) return 0;
  weir_output(<i32>outPtr, <i32>outLen);
  return 1;
}
