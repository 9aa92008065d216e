/** `node dist/scripts/makeSample.js OUT.pcap`: writes the bundled sample capture. */
import { writeFileSync } from 'node:fs';
import { makeSampleCapture } from './sampleTraffic';

const out = process.argv[2] ?? 'test/fixtures/sample.pcap';
writeFileSync(out, makeSampleCapture());
console.log(`wrote ${out}`);
