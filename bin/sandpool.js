#!/usr/bin/env node
// The `sandpool` executable. In a checkout it runs the TypeScript sources directly (Node >= 24
// strips types), so what runs is always what is checked out; an installed package (under
// node_modules, where Node does not strip types) runs the compiled dist/.
import { existsSync } from 'node:fs';

const [major] = process.versions.node.split('.').map(Number);
if (major < 24) {
  process.stderr.write(`sandpool: needs Node.js 24 or newer (this is ${process.version})\n`);
  process.exit(2);
}

// A reader that goes away (`sandpool run x.js | head`) is not an error worth a stack trace. Output
// that cannot be written at all (a full disk) is sandpool failing: exit 8, said on stderr if it can be.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error) => {
    if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    if (stream === process.stdout) {
      try {
        process.stderr.write(`sandpool: failed: cannot write the output: ${error.code ?? error.message}\n`);
      } catch {
        // stderr is gone as well: the exit code says it.
      }
    }
    process.exit(8);
  });
}

const source = new URL('../src/cli.ts', import.meta.url);
const inCheckout = existsSync(source) && !source.pathname.includes('/node_modules/');
const { main } = await import(inCheckout ? source.href : new URL('../dist/src/cli.js', import.meta.url).href);
process.exitCode = await main(process.argv.slice(2), process.env);
