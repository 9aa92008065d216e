/** The whole project type-checks under the strict tsconfig (jest itself only transpiles). */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

test('tsc --noEmit reports no errors', () => {
  const root = join(__dirname, '..');
  const r = spawnSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', join(root, 'tsconfig.json'), '--noEmit'], {
    cwd: root,
    encoding: 'utf8',
  });
  expect(r.stdout + r.stderr).toBe('');
  expect(r.status).toBe(0);
});
