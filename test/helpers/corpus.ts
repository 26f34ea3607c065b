// Test helper: the HumanEval-JS corpus, which lives in ../shared/corpus beside the repository (CI
// clones the repository with shared/ beside it; a bare clone elsewhere has no corpus).
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const HUMANEVAL_PATH = fileURLToPath(new URL('../../../shared/corpus/humaneval-js.jsonl', import.meta.url));

export interface CorpusProblem {
  id: string;
  code: string;
}

/** The 164 problems (ids without the `:test` suffix), or undefined when shared/ is not beside us. */
export function loadHumanEval(): CorpusProblem[] | undefined {
  if (!existsSync(HUMANEVAL_PATH)) return undefined;
  return readFileSync(HUMANEVAL_PATH, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const { id, code } = JSON.parse(line) as CorpusProblem;
      return { id: id.replace(/:test$/, ''), code };
    });
}
