/**
 * Part of `npm run build`: bundles the report's browser code (sinks/report/browser/) into
 * dist/sinks/report/browser.js, where the built `ctflow report` reads it, so the installed CLI
 * needs no bundler at run time.
 */
import { join } from 'node:path';
import { buildSync } from 'esbuild';
import { BUNDLE_FILE, bundleOptions } from '../sinks/report/browserBundle';

const root = join(__dirname, '..', '..');
const outfile = join(root, 'dist', 'sinks', 'report', BUNDLE_FILE);
buildSync(bundleOptions(join(root, 'sinks', 'report'), outfile));
console.log(`wrote ${outfile}`);
