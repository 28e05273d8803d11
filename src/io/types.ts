/**
 * The io interface: the one seam between the log and the operating system.
 *
 * Everything the Wal does to the disk goes through a `WalIo`: the two shipped
 * backends (`native`, `js`) implement it, and so do the test helpers that
 * inject faults, count fsyncs or simulate power loss. Nothing above this seam
 * knows which one it talks to.
 *
 * Every operation has a blocking form (`sync`, used by the `*Sync` API) and a
 * promise form (`async`, which must never block the event loop on the disk).
 * Both forms of one backend must have the same effect on disk.
 *
 * Errors: an operation that fails throws (or rejects with) an error carrying
 * `errno` (number) and `syscall` (string) like Node's own fs errors; the Wal
 * wraps it as `WAL_IO`.
 */
export type Fd = number;

/** A held directory lock; released by `unlock`. */
export type LockToken = number;

export interface IoOps {
  /** Takes the exclusive directory lock on `lockPath`, retrying for about `waitMs`.
   *  Throws an error with `code: 'EWOULDBLOCK'` (errno EAGAIN) when still held elsewhere. */
  lock(lockPath: string, waitMs: number): LockToken;
  unlock(token: LockToken): void;

  /** Opens a segment file read-write. `create` makes it exclusively (O_CREAT|O_EXCL). */
  openSegment(path: string, create: boolean): Fd;
  /** Writes all of `data` at `position`, looping on short writes and EINTR.
   *  Returns the number of bytes written; less than `data.length` only if the
   *  device stopped accepting bytes without an error. */
  write(fd: Fd, data: Uint8Array, position: number): number;
  /** The append path in one call: fills in the CRC trailer of every frame in
   *  `frames` (format/frame.ts `fillFrameCrcs`), writes all of it at `position` as
   *  `write` does, then fdatasyncs if `sync` and the write was whole. Returns
   *  the bytes written. The native backend does all of it in one hop, in the async form on its own
   *  writer thread (native/writer_thread.h) when that is free, else on the thread pool. */
  appendFrames(fd: Fd, frames: Uint8Array, position: number, sync: boolean): number;
  /** fdatasync: the file's data, and the metadata needed to read it back, are durable. */
  datasync(fd: Fd): void;
  /** Starts writing back the file's dirty pages in [offset, offset + length) without waiting for
   *  them (sync_file_range, SYNC_FILE_RANGE_WRITE), so a later fdatasync has less left to wait for.
   *  A hint: it makes nothing durable. The js backend does nothing (node:fs has no such call). */
  startWriteback(fd: Fd, offset: number, length: number): void;
  /** Makes the file at least `size` bytes long, the new bytes reading as zeros
   *  and their space reserved (fallocate where available), so later writes do
   *  not grow the file. `zeroFill` also writes zeros over the new range: the
   *  file system then holds it as written data, and an fdatasync after
   *  overwriting it has no extent conversion to commit. Where fallocate is
   *  missing (the js backend, some file systems) zeros are written either way. */
  allocate(fd: Fd, size: number, zeroFill: boolean): void;
  /** Sets the file length to `size` (ftruncate). */
  truncate(fd: Fd, size: number): void;
  close(fd: Fd): void;

  /** fsync of a directory, making created and deleted entries durable. */
  syncDir(dir: string): void;
  /** mkdir -p. */
  makeDir(dir: string): void;
  /** Names of the entries in `dir` (not paths). */
  listDir(dir: string): string[];
  /** Opens a file read-only: readers that take no lock never open a segment for writing. */
  openRead(path: string): Fd;
  /** The file's size in bytes (fstat). */
  fileSize(fd: Fd): number;
  /** Reads up to `length` bytes at file `position` into `target` from `offset`, looping
   *  on short reads; returns the count, less than `length` only at the end of the file. */
  read(fd: Fd, target: Uint8Array, offset: number, length: number, position: number): number;
  unlink(path: string): void;
  /** rename(2): atomically replaces `to` with `from`. */
  rename(from: string, to: string): void;
}

export type AsyncIoOps = {
  [K in keyof IoOps]: (...args: Parameters<IoOps[K]>) => Promise<ReturnType<IoOps[K]>>;
};

export interface WalIo {
  /** 'native', 'js', or a test helper's own name. */
  readonly name: string;
  readonly sync: IoOps;
  readonly async: AsyncIoOps;
  /** CRC-32 (IEEE 802.3, as zlib computes it) of `data`, continuing from `initial`. */
  crc32(data: Uint8Array, initial?: number): number;
  /**
   * Optional: walks the frames back to back from the start of `frames` and
   * returns the bytes of those before the first whose length is out of
   * range, which runs past the end, or whose CRC trailer does not hold. A
   * reader checks a window of frames with one call instead of a `crc32`
   * call per frame (the native backend's); without it, it calls `crc32`
   * for each frame. It must never count a frame whose CRC does not hold.
   */
  checkFrameCrcs?(frames: Uint8Array): number;
}

/**
 * What a reader checks CRCs with: an io's `crc32` and, where it has one,
 * its `checkFrameCrcs`. Readers take the io itself; the CLI's audit takes
 * `jsIo`'s, zlib's CRC, whatever io it reads through.
 */
export type FrameChecksums = Pick<WalIo, 'crc32' | 'checkFrameCrcs'>;
