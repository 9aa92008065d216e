/**
 * The browser side of the report (sinks/report/browser/, TypeScript with uPlot) as one script.
 * `npm run build` bundles it once into dist/sinks/report/browser.js with esbuild, so the built
 * CLI needs no bundler at run time; run from the sources (tests, ts-node), where no bundle
 * exists, it is bundled on first use with esbuild from the dev dependencies.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BuildOptions } from 'esbuild';

export const BUNDLE_FILE = 'browser.js';
const ENTRY = join('browser', 'main.ts');

let cached: string | undefined;

/** esbuild's options for the browser script; `outfile` given when writing to disk. */
export function bundleOptions(sourceDir: string, outfile?: string): BuildOptions {
  return {
    entryPoints: [join(sourceDir, ENTRY)],
    bundle: true,
    minify: true,
    format: 'iife',
    target: ['chrome100', 'firefox100', 'safari16'],
    legalComments: 'none',
    // uPlot's stylesheet goes into the script as text, so the HTML needs no separate CSS file.
    loader: { '.css': 'text' },
    ...(outfile ? { outfile } : {}),
  };
}

export function browserScript(): string {
  if (cached !== undefined) return cached;
  const prebuilt = join(__dirname, BUNDLE_FILE);
  if (existsSync(prebuilt)) return (cached = readFileSync(prebuilt, 'utf8'));
  const sourceDir = __dirname;
  if (!existsSync(join(sourceDir, ENTRY))) throw new Error(`report: no browser bundle at ${prebuilt}: run npm run build`);
  let esbuild: typeof import('esbuild');
  try {
    // Loaded only here: esbuild is a dev dependency, absent where the built bundle is used.
    esbuild = require('esbuild');
  } catch {
    throw new Error(`report: no browser bundle at ${prebuilt} and esbuild is not installed: run npm ci && npm run build`);
  }
  const r = esbuild.buildSync({ ...bundleOptions(sourceDir), write: false });
  return (cached = r.outputFiles[0].text);
}
