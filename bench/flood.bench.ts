/**
 * `npm run bench:flood`: 10 million random SYNs (FLOOD_SYNS) against nf_conntrack_max=1000000
 * (FLOOD_MAX) with 1000 established connections (FLOOD_LEGIT) in the same stream (bench/flood.ts).
 * Prints one JSON line: rate, peak RSS, early drops, drops and how the established connections fared.
 */
import { synFlood } from './flood';

const syns = Number(process.env.FLOOD_SYNS ?? 10_000_000);
const max = Number(process.env.FLOOD_MAX ?? 1_000_000);
const legit = Number(process.env.FLOOD_LEGIT ?? 1000);
console.log(JSON.stringify(synFlood(syns, max, legit)));
