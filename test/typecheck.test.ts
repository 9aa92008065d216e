/** The sources (node and the report's browser code) and the tests type-check under the strict tsconfigs (jest itself only transpiles). */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

test.each(['tsconfig.json', 'tsconfig.test.json', 'sinks/report/browser/tsconfig.json'])('tsc -p %s --noEmit reports no errors', (config) => {
  const root = join(__dirname, '..');
  const r = spawnSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', join(root, config), '--noEmit'], {
    cwd: root,
    encoding: 'utf8',
  });
  expect(r.stdout + r.stderr).toBe('');
  expect(r.status).toBe(0);
});
