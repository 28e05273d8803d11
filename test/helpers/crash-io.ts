import fs from 'node:fs';
import path from 'node:path';
import type { AsyncIoOps, Fd, IoOps, WalIo } from '../../src/io/types.js';
import { serializeAsync } from './serial-io.js';

/*
 * A WalIo that records what a power cut could undo.
 *
 * It wraps a real backend: every call really happens on the real directory,
 * so the Wal behaves exactly as in production. Alongside, it keeps a history
 * of every operation that changes what is on disk, in the order they
 * completed:
 *
 *   - the bytes of every write / appendFrames, read back from the file after
 *     the inner call (so the CRC trailers are the ones the backend sealed);
 *   - allocate (the file grows with zeros) and truncate (the file length);
 *   - fsync: a `datasync`, or an `appendFrames` asked to sync. An fsync makes
 *     durable the writes to that file that had *completed before it started*
 *     (a write that finished while the fsync ran is not assumed covered);
 *   - directory entries: create (openSegment with `create`), unlink, rename,
 *     and directory fsync (syncDir), which makes the entry changes that
 *     completed before it started durable;
 *   - marks the test adds itself (`mark`): acknowledgements, checkpoint fences.
 *
 * Its async calls run one at a time, in call order (helpers/serial-io.ts),
 * each as the inner backend's blocking call on a later turn of the event loop
 * (`onLaterTurns`): the history then depends on the workload alone, not on
 * how the thread pool interleaved the drain loop with the spare segment's
 * preparation, or when a pool call finished relative to a write the Wal makes
 * on the loop itself (docs/DESIGN.md, "Writes on the event loop"), and a seed
 * records the same history on every run.
 *
 * Files are tracked as inodes, so data follows a file through a rename (the
 * spare segment becoming a segment) and an unlinked file's data is there again
 * if the unlink is undone.
 *
 * `materialize(cut, model)` builds the directory a power cut after the first
 * `cut` history entries may leave, under one of several models of what the
 * kernel and the drive had not yet made durable (see `PowerCutModel`).
 * Only the log directory given to the constructor is modelled; the lock file
 * is not (open creates it).
 */

export type HistoryEntry =
  | { kind: 'create'; name: string; inode: number }
  | { kind: 'unlink'; name: string }
  | { kind: 'rename'; from: string; to: string }
  | { kind: 'syncDir'; upTo: number }
  | { kind: 'write'; inode: number; position: number; bytes: Buffer }
  | { kind: 'allocate'; inode: number; size: number }
  | { kind: 'truncate'; inode: number; size: number }
  | { kind: 'fsync'; inode: number; upTo: number }
  | { kind: 'mark'; label: string; value: number };

/**
 * What a power cut keeps of what was not yet durable:
 *   - `data`: of the file operations (write, allocate, truncate) not covered by an fsync:
 *       'all'    everything (what a killed process leaves: the page cache survives)
 *       'none'   nothing
 *       'prefix' the first `count` of them, in the order they were made
 *       'torn'   a prefix, then one write of which only some 512-byte sectors reached the disk
 *       'subset' each one independently, with probability 1/2 (writes reordered by the drive)
 *   - `entries`: of the directory changes not covered by a directory fsync:
 *       'all', 'none' (every create / unlink / rename since the last syncDir undone),
 *       'prefix' (the first `count` of them, in order, as journaling file systems
 *       commit them), or 'subset' (each one independently: no ordering at all,
 *       which POSIX permits without an fsync in between).
 * `random` drives the choices of 'prefix', 'torn' and 'subset'.
 */
export interface PowerCutModel {
  data: 'all' | 'none' | 'prefix' | 'torn' | 'subset';
  entries: 'all' | 'none' | 'prefix' | 'subset';
  random: () => number;
}

export const SECTOR_BYTES = 512;

export class CrashIo implements WalIo {
  readonly name: string;
  readonly sync: IoOps;
  readonly async: AsyncIoOps;
  readonly crc32: WalIo['crc32'];
  readonly history: HistoryEntry[] = [];
  private nextInode = 1;
  /** The live namespace of the log directory: entry name -> inode. */
  private readonly names = new Map<string, number>();
  private readonly fds = new Map<Fd, number>();

  constructor(
    readonly inner: WalIo,
    readonly dir: string,
  ) {
    this.name = `crash(${inner.name})`;
    this.crc32 = inner.crc32;
    const i = inner.sync;
    const a = onLaterTurns(inner.sync);
    this.sync = {
      lock: (p, w) => i.lock(p, w),
      unlock: (t) => i.unlock(t),
      openSegment: (p, create) => this.opened(p, create, i.openSegment(p, create)),
      write: (fd, data, position) => this.wrote(fd, position, i.write(fd, data, position)),
      appendFrames: (fd, frames, position, sync) =>
        this.appended(fd, position, sync, i.appendFrames(fd, frames, position, sync), frames.length),
      datasync: (fd) => {
        const start = this.history.length;
        i.datasync(fd);
        this.fsynced(fd, start);
      },
      // A hint that makes nothing durable: nothing to record.
      startWriteback: (fd, offset, length) => i.startWriteback(fd, offset, length),
      allocate: (fd, size, zeroFill) => {
        i.allocate(fd, size, zeroFill);
        this.push({ kind: 'allocate', inode: this.inodeOf(fd), size });
      },
      truncate: (fd, size) => {
        i.truncate(fd, size);
        this.push({ kind: 'truncate', inode: this.inodeOf(fd), size });
      },
      close: (fd) => {
        i.close(fd);
        this.fds.delete(fd);
      },
      syncDir: (d) => {
        const start = this.history.length;
        i.syncDir(d);
        if (this.isOurs(d)) this.push({ kind: 'syncDir', upTo: start });
      },
      makeDir: (d) => i.makeDir(d),
      listDir: (d) => i.listDir(d),
      openRead: (p) => i.openRead(p),
      fileSize: (fd) => i.fileSize(fd),
      read: (fd, target, offset, length, position) => i.read(fd, target, offset, length, position),
      unlink: (p) => {
        i.unlink(p);
        this.unlinked(p);
      },
      rename: (from, to) => {
        i.rename(from, to);
        this.renamed(from, to);
      },
    };
    this.async = serializeAsync({
      lock: (p, w) => a.lock(p, w),
      unlock: (t) => a.unlock(t),
      openSegment: async (p, create) => this.opened(p, create, await a.openSegment(p, create)),
      write: async (fd, data, position) => this.wrote(fd, position, await a.write(fd, data, position)),
      appendFrames: async (fd, frames, position, sync) => {
        const length = frames.length;
        return this.appended(fd, position, sync, await a.appendFrames(fd, frames, position, sync), length);
      },
      datasync: async (fd) => {
        const start = this.history.length;
        await a.datasync(fd);
        this.fsynced(fd, start);
      },
      startWriteback: (fd, offset, length) => a.startWriteback(fd, offset, length),
      allocate: async (fd, size, zeroFill) => {
        await a.allocate(fd, size, zeroFill);
        this.push({ kind: 'allocate', inode: this.inodeOf(fd), size });
      },
      truncate: async (fd, size) => {
        await a.truncate(fd, size);
        this.push({ kind: 'truncate', inode: this.inodeOf(fd), size });
      },
      close: async (fd) => {
        await a.close(fd);
        this.fds.delete(fd);
      },
      syncDir: async (d) => {
        const start = this.history.length;
        await a.syncDir(d);
        if (this.isOurs(d)) this.push({ kind: 'syncDir', upTo: start });
      },
      makeDir: (d) => a.makeDir(d),
      listDir: (d) => a.listDir(d),
      openRead: (p) => a.openRead(p),
      fileSize: (fd) => a.fileSize(fd),
      read: (fd, target, offset, length, position) => a.read(fd, target, offset, length, position),
      unlink: async (p) => {
        await a.unlink(p);
        this.unlinked(p);
      },
      rename: async (from, to) => {
        await a.rename(from, to);
        this.renamed(from, to);
      },
    });
  }

  /** Adds a test's own entry (an acknowledgement, a fence) to the history; returns its index. */
  mark(label: string, value: number): number {
    this.push({ kind: 'mark', label, value });
    return this.history.length - 1;
  }

  /**
   * The files (name -> bytes) of the log directory after a power cut that
   * happened once the first `cut` history entries had completed, under `model`.
   */
  materialize(cut: number, model: PowerCutModel): Map<string, Buffer> {
    const entries = this.history.slice(0, cut);
    // What fsyncs (file and directory) made durable by the time of the cut.
    let dirDurableBefore = 0;
    const fileDurableBefore = new Map<number, number>();
    for (const entry of entries) {
      if (entry.kind === 'syncDir') dirDurableBefore = Math.max(dirDurableBefore, entry.upTo);
      if (entry.kind === 'fsync') fileDurableBefore.set(entry.inode, Math.max(fileDurableBefore.get(entry.inode) ?? 0, entry.upTo));
    }

    // Directory: durable entry changes always; the rest per model.
    const pendingEntries: number[] = [];
    entries.forEach((entry, index) => {
      if (isEntryChange(entry) && index >= dirDurableBefore) pendingEntries.push(index);
    });
    const keptEntries = new Set(
      model.entries === 'subset'
        ? pendingEntries.filter(() => model.random() < 0.5)
        : choosePrefix(pendingEntries, model.entries, model.random),
    );
    const names = new Map<string, number>();
    entries.forEach((entry, index) => {
      if (!isEntryChange(entry) || (index >= dirDurableBefore && !keptEntries.has(index))) return;
      if (entry.kind === 'create') names.set(entry.name, entry.inode);
      else if (entry.kind === 'unlink') names.delete(entry.name);
      else if (entry.kind === 'rename') {
        const inode = names.get(entry.from);
        if (inode === undefined) return; // the create it renames was undone
        names.delete(entry.from);
        names.set(entry.to, inode);
      }
    });

    // File data: durable operations always; the rest per model.
    const pendingData: number[] = [];
    entries.forEach((entry, index) => {
      if (isDataChange(entry) && index >= (fileDurableBefore.get(entry.inode) ?? 0)) pendingData.push(index);
    });
    const kept = new Set<number>();
    let torn: { index: number; sectors: Set<number> } | null = null;
    switch (model.data) {
      case 'all':
        for (const index of pendingData) kept.add(index);
        break;
      case 'none':
        break;
      case 'prefix':
        for (const index of choosePrefix(pendingData, 'prefix', model.random)) kept.add(index);
        break;
      case 'subset':
        for (const index of pendingData) if (model.random() < 0.5) kept.add(index);
        break;
      case 'torn': {
        const writes = pendingData.filter((index) => (entries[index] as HistoryEntry).kind === 'write');
        if (writes.length === 0) break;
        const tornIndex = writes[Math.floor(model.random() * writes.length)] as number;
        for (const index of pendingData) if (index < tornIndex) kept.add(index);
        const write = entries[tornIndex] as Extract<HistoryEntry, { kind: 'write' }>;
        const first = Math.floor(write.position / SECTOR_BYTES);
        const last = Math.floor((write.position + Math.max(write.bytes.length, 1) - 1) / SECTOR_BYTES);
        const sectors = new Set<number>();
        for (let sector = first; sector <= last; sector++) if (model.random() < 0.5) sectors.add(sector);
        torn = { index: tornIndex, sectors };
        break;
      }
    }

    const contents = new Map<number, Buffer>();
    const files = new Set(names.values());
    entries.forEach((entry, index) => {
      if (!isDataChange(entry) || !files.has(entry.inode)) return;
      const durable = index < (fileDurableBefore.get(entry.inode) ?? 0);
      const isTorn = torn !== null && torn.index === index;
      if (!durable && !kept.has(index) && !isTorn) return;
      let content = contents.get(entry.inode) ?? Buffer.alloc(0);
      if (entry.kind === 'write') {
        const end = entry.position + entry.bytes.length;
        if (content.length < end) content = grow(content, end);
        if (isTorn && !durable) {
          for (const sector of torn!.sectors) {
            const from = Math.max(entry.position, sector * SECTOR_BYTES);
            const to = Math.min(end, (sector + 1) * SECTOR_BYTES);
            entry.bytes.copy(content, from, from - entry.position, to - entry.position);
          }
        } else {
          entry.bytes.copy(content, entry.position);
        }
      } else if (entry.kind === 'allocate') {
        if (content.length < entry.size) content = grow(content, entry.size);
      } else if (entry.kind === 'truncate') {
        content = entry.size <= content.length ? content.subarray(0, entry.size) : grow(content, entry.size);
      }
      contents.set(entry.inode, content);
    });

    const result = new Map<string, Buffer>();
    for (const [name, inode] of names) result.set(name, contents.get(inode) ?? Buffer.alloc(0));
    return result;
  }

  /** Writes `files` into `target` (created if missing). */
  static writeFiles(target: string, files: Map<string, Buffer>): void {
    fs.mkdirSync(target, { recursive: true });
    for (const [name, bytes] of files) fs.writeFileSync(path.join(target, name), bytes);
  }

  // ---- recording -------------------------------------------------------

  private push(entry: HistoryEntry): void {
    this.history.push(entry);
  }

  private isOurs(p: string): boolean {
    return path.resolve(p) === path.resolve(this.dir);
  }

  private inodeOf(fd: Fd): number {
    const inode = this.fds.get(fd);
    if (inode === undefined) throw new Error(`crash-io: fd ${fd} was not opened through this wrapper`);
    return inode;
  }

  private opened(p: string, create: boolean, fd: Fd): Fd {
    const name = path.basename(p);
    let inode = this.names.get(name);
    if (create || inode === undefined) {
      if (!create) throw new Error(`crash-io: ${name} existed before recording started; start from an empty directory`);
      inode = this.nextInode++;
      this.names.set(name, inode);
      this.push({ kind: 'create', name, inode });
    }
    this.fds.set(fd, inode);
    return fd;
  }

  private wrote(fd: Fd, position: number, written: number): number {
    if (written > 0) {
      const bytes = Buffer.alloc(written);
      fs.readSync(fd, bytes, 0, written, position);
      this.push({ kind: 'write', inode: this.inodeOf(fd), position, bytes });
    }
    return written;
  }

  private appended(fd: Fd, position: number, sync: boolean, written: number, length: number): number {
    this.wrote(fd, position, written);
    // appendFrames fdatasyncs after a whole write; the fsync covers that write.
    if (sync && written === length) this.push({ kind: 'fsync', inode: this.inodeOf(fd), upTo: this.history.length });
    return written;
  }

  private fsynced(fd: Fd, start: number): void {
    this.push({ kind: 'fsync', inode: this.inodeOf(fd), upTo: start });
  }

  private unlinked(p: string): void {
    if (!this.isOurs(path.dirname(p))) return;
    const name = path.basename(p);
    if (!this.names.has(name)) return;
    this.names.delete(name);
    this.push({ kind: 'unlink', name });
  }

  private renamed(from: string, to: string): void {
    const inode = this.names.get(path.basename(from));
    if (inode === undefined) return;
    this.names.delete(path.basename(from));
    this.names.set(path.basename(to), inode);
    this.push({ kind: 'rename', from: path.basename(from), to: path.basename(to) });
  }
}

/**
 * `ops` as promise calls, each made blocking on a later turn of the event loop
 * (setImmediate): a call then completes at a point fixed by the event loop's
 * order, never by how long the thread pool took.
 */
function onLaterTurns(ops: IoOps): AsyncIoOps {
  return Object.fromEntries(
    Object.entries(ops).map(([op, fn]) => [
      op,
      (...args: unknown[]) =>
        new Promise((resolve, reject) =>
          setImmediate(() => {
            try {
              resolve((fn as (...a: unknown[]) => unknown)(...args));
            } catch (error) {
              reject(error);
            }
          }),
        ),
    ]),
  ) as unknown as AsyncIoOps;
}

function isEntryChange(entry: HistoryEntry): entry is Extract<HistoryEntry, { kind: 'create' | 'unlink' | 'rename' }> {
  return entry.kind === 'create' || entry.kind === 'unlink' || entry.kind === 'rename';
}

function isDataChange(entry: HistoryEntry): entry is Extract<HistoryEntry, { kind: 'write' | 'allocate' | 'truncate' }> {
  return entry.kind === 'write' || entry.kind === 'allocate' || entry.kind === 'truncate';
}

function choosePrefix(indexes: number[], mode: 'all' | 'none' | 'prefix', random: () => number): number[] {
  if (mode === 'all') return indexes;
  if (mode === 'none') return [];
  return indexes.slice(0, Math.floor(random() * (indexes.length + 1)));
}

function grow(content: Buffer, size: number): Buffer {
  const bigger = Buffer.alloc(size);
  content.copy(bigger);
  return bigger;
}
