/**
 * The local state directory of exactly-once `ctflow run` (pipeline.stateDir, --state-dir), laid
 * out as Kafka Streams lays out its state.dir: one folder per consumer group, one per input
 * partition inside it, each with a `.lock` file naming the pid that uses it and, between a clean
 * stop (or the partition's revocation) and the next restore, a `checkpoint` file
 * (cli/checkpointFile.ts). docs/state-dir.md describes it for operators.
 *
 *   <stateDir>/<group>/<input topic>-<partition>/.lock
 *   <stateDir>/<group>/<input topic>-<partition>/checkpoint
 *
 * The lock keeps two live processes on one machine (same group) from using one partition's folder
 * at once: the second one restores that partition from the changelog alone and writes no
 * checkpoint for it. A lock whose pid is no longer alive was left by a crash and is taken over.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeCheckpoint, encodeCheckpoint } from './checkpointFile';
import type { Checkpoint, CheckpointToWrite } from './checkpointFile';

export const CHECKPOINT_FILE = 'checkpoint';
export const LOCK_FILE = '.lock';

/** Kafka Streams' default is `${java.io.tmpdir}/kafka-streams`; ctflow's is the same idea. */
export function defaultStateDir(): string {
  return join(tmpdir(), 'ctflow-state');
}

/**
 * A name safe as one path component on any file system: letters, digits, `.`, `_` and `-` stay,
 * every other byte becomes %XX (so `a/b` and `a%2Fb` cannot meet), and `.` or `..` alone are
 * escaped too. Topic names already fit; group ids are any string.
 */
export function pathComponent(name: string): string {
  const escaped = [...Buffer.from(name, 'utf8')].map((c) => (/[A-Za-z0-9._-]/.test(String.fromCharCode(c)) ? String.fromCharCode(c) : `%${c.toString(16).toUpperCase().padStart(2, '0')}`)).join('');
  return escaped === '' || escaped === '.' || escaped === '..' ? escaped.replace(/\./g, '%2E') || '%' : escaped;
}

/** Whether a process with this pid exists (signal 0 tests without sending; EPERM means it exists under another user). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export type LockResult = { locked: true } | { locked: false; holder: number };

/** One group's partition folders in one state directory. */
export class StateDirectory {
  private readonly root: string;
  private readonly held = new Set<number>();

  constructor(stateDir: string, group: string, private readonly inputTopic: string) {
    this.root = join(stateDir, pathComponent(group));
  }

  folder(partition: number): string {
    return join(this.root, `${pathComponent(this.inputTopic)}-${partition}`);
  }

  checkpointPath(partition: number): string {
    return join(this.folder(partition), CHECKPOINT_FILE);
  }

  /**
   * Takes the partition's folder for this process: creates `.lock` holding our pid, exclusively.
   * An existing lock of a live other process is respected; one of a dead process (or of an
   * earlier process that had our pid, such as pid 1 in a restarted container) is replaced.
   */
  lock(partition: number): LockResult {
    if (this.held.has(partition)) return { locked: true };
    mkdirSync(this.folder(partition), { recursive: true });
    const path = join(this.folder(partition), LOCK_FILE);
    for (let attempt = 0; ; attempt++) {
      try {
        const fd = openSync(path, 'wx');
        writeSync(fd, `${process.pid}\n`);
        closeSync(fd);
        this.held.add(partition);
        return { locked: true };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      let holder = NaN;
      try {
        holder = Number.parseInt(readFileSync(path, 'utf8'), 10);
      } catch {
        // Removed meanwhile: try again.
      }
      if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && alive(holder)) return { locked: false, holder };
      // A second process took the stale lock over between our two tries.
      if (attempt > 0) return { locked: false, holder };
      // Moved aside rather than deleted, so of two processes that both found it stale only one takes it away.
      try {
        renameSync(path, `${path}.stale-${process.pid}`);
        rmSync(`${path}.stale-${process.pid}`, { force: true });
      } catch {
        // Another process moved it first; the exclusive create below decides.
      }
    }
  }

  /** Gives the folder up (after its checkpoint is written, or when the partition was never ours here). */
  unlock(partition: number): void {
    if (!this.held.delete(partition)) return;
    rmSync(join(this.folder(partition), LOCK_FILE), { force: true });
  }

  holds(partition: number): boolean {
    return this.held.has(partition);
  }

  unlockAll(): void {
    this.unlockAllBut(new Set());
  }

  unlockAllBut(keep: ReadonlySet<number>): void {
    for (const p of [...this.held]) if (!keep.has(p)) this.unlock(p);
  }

  /**
   * Writes the checkpoint atomically: a temporary file in the same folder, flushed to disk, then
   * renamed over the old name (rename within a file system is atomic on POSIX), then the folder
   * flushed so the rename itself survives a power loss. A reader sees the old file or the new one.
   */
  writeCheckpoint(c: CheckpointToWrite): number {
    const folder = this.folder(c.partition);
    mkdirSync(folder, { recursive: true });
    const tmp = join(folder, `${CHECKPOINT_FILE}.tmp-${process.pid}`);
    let bytes = 0;
    try {
      const fd = openSync(tmp, 'w');
      try {
        for (const chunk of encodeCheckpoint(c)) {
          for (let off = 0; off < chunk.length; ) off += writeSync(fd, chunk, off);
          bytes += chunk.length;
        }
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, this.checkpointPath(c.partition));
    } catch (err) {
      rmSync(tmp, { force: true }); // a full disk, say: no half-written file stays behind
      throw err;
    }
    try {
      const dir = openSync(folder, 'r');
      fsyncSync(dir);
      closeSync(dir);
    } catch {
      // Not every platform lets a directory be opened for fsync; the rename is still atomic.
    }
    return bytes;
  }

  /** The partition's checkpoint: absent, or read (throws CheckpointFormatError when it cannot be used). */
  readCheckpoint(partition: number): Checkpoint | undefined {
    let bytes: Buffer;
    try {
      bytes = readFileSync(this.checkpointPath(partition));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    return decodeCheckpoint(bytes);
  }

  /**
   * Removes the checkpoint once it is loaded, as Kafka Streams does while a task runs under
   * exactly-once: after a crash the state on disk would be stale, and the full changelog read is
   * the fallback.
   */
  deleteCheckpoint(partition: number): void {
    try {
      unlinkSync(this.checkpointPath(partition));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}
