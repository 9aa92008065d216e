/**
 * The local state directory (cli/stateDirectory.ts): one folder per group and partition whose
 * names cannot collide or escape, a pid lock that a live process keeps and a dead one's is taken
 * over, and checkpoints written atomically (no temporary file left, read back as written).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import fc from 'fast-check';
import { LOCK_FILE, pathComponent, StateDirectory } from '../../cli/stateDirectory';
import type { Checkpoint } from '../../cli/checkpointFile';

const fresh = () => mkdtempSync(join(tmpdir(), 'ctflow-statedir-'));

describe('state directory', () => {
  test('folder names: safe characters only, no two names alike, never . or ..', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 20 }), fc.string({ unit: 'grapheme', maxLength: 20 }), (a, b) => {
        const ca = pathComponent(a);
        expect(ca).toMatch(/^[A-Za-z0-9._%-]+$/);
        expect(['.', '..']).not.toContain(ca);
        if (a !== b) expect(ca).not.toBe(pathComponent(b));
      }),
    );
    expect(pathComponent('..')).toBe('%2E%2E');
    expect(pathComponent('a/b')).toBe('a%2Fb');
  });

  test('one folder per group and input partition', () => {
    const root = fresh();
    const a = new StateDirectory(root, 'group-a', 'in');
    const b = new StateDirectory(root, 'group-b', 'in');
    expect(a.folder(0)).not.toBe(a.folder(1));
    expect(a.folder(0)).not.toBe(b.folder(0));
    expect(dirname(dirname(a.folder(0)))).toBe(root);
  });

  test('a live process keeps its lock; a dead one\'s is taken over; our own is ours', async () => {
    const root = fresh();
    const dir = new StateDirectory(root, 'g', 't');
    expect(dir.lock(0)).toEqual({ locked: true });
    expect(readFileSync(join(dir.folder(0), LOCK_FILE), 'utf8').trim()).toBe(String(process.pid));
    expect(dir.lock(0)).toEqual({ locked: true });

    // Held by another live process.
    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    const second = new StateDirectory(root, 'g', 't');
    mkdirSync(second.folder(1), { recursive: true });
    writeFileSync(join(second.folder(1), LOCK_FILE), `${other.pid}\n`);
    expect(second.lock(1)).toEqual({ locked: false, holder: other.pid });
    expect(second.holds(1)).toBe(false);
    other.kill('SIGKILL');
    await new Promise((r) => other.once('exit', r));
    // The holder died: its lock is stale.
    expect(second.lock(1)).toEqual({ locked: true });
    expect(readFileSync(join(second.folder(1), LOCK_FILE), 'utf8').trim()).toBe(String(process.pid));

    // A lock naming a pid no process has (a process long gone) is stale too.
    const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString();
    second.unlock(1);
    writeFileSync(join(second.folder(1), LOCK_FILE), `${gone}\n`);
    expect(second.lock(1)).toEqual({ locked: true });

    second.unlockAllBut(new Set([0]));
    expect(existsSync(join(second.folder(1), LOCK_FILE))).toBe(false);
    dir.unlockAll();
    expect(existsSync(join(dir.folder(0), LOCK_FILE))).toBe(false);
  });

  test('a checkpoint is written whole, read back, and deleted; no temporary file stays', () => {
    const root = fresh();
    const dir = new StateDirectory(root, 'g', 't');
    expect(dir.readCheckpoint(2)).toBeUndefined();
    const c: Checkpoint = { group: 'g', inputTopic: 't', partition: 2, writtenMs: 1_700_000_000_000, changelogOffset: 42n, position: { nextOffset: '7', lastPacketUs: 3 }, records: new Map([['m', new Uint8Array([1, 2])], ['c1', new Uint8Array([3])]]) };
    const bytes = dir.writeCheckpoint(c);
    expect(readdirSync(dir.folder(2))).toEqual(['checkpoint']);
    expect(readFileSync(dir.checkpointPath(2)).length).toBe(bytes);
    const back = dir.readCheckpoint(2)!;
    expect(back.changelogOffset).toBe(42n);
    expect([...back.records].map(([k, v]) => [k, [...v]])).toEqual([['m', [1, 2]], ['c1', [3]]]);
    // Written again over the old one (the rename replaces it).
    dir.writeCheckpoint({ ...c, changelogOffset: 43n });
    expect(dir.readCheckpoint(2)!.changelogOffset).toBe(43n);
    dir.deleteCheckpoint(2);
    expect(dir.readCheckpoint(2)).toBeUndefined();
    dir.deleteCheckpoint(2);
  });
});
