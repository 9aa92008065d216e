/** The CLI run in this process for tests: exit code and the lines it printed to each stream. */
import { main, mainAsync } from '../../main';

export interface CliRun {
  code: number;
  out: string[];
  err: string[];
}

export function runCli(...argv: string[]): CliRun {
  const out: string[] = [];
  const err: string[] = [];
  const code = main(argv, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out, err };
}

/** For commands that finish later (Kafka, --workers). */
export async function runCliAsync(...argv: string[]): Promise<CliRun> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await mainAsync(argv, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out, err };
}
