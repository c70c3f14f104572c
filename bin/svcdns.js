#!/usr/bin/env node
// svcdns entry point: the built CLI when present (npm run build), else the TypeScript source (Node >= 24).
import { existsSync } from 'node:fs';

const built = new URL('../dist/cli.js', import.meta.url);
const { main } = await import(existsSync(built) ? built.href : new URL('../src/cli.ts', import.meta.url).href);
process.exit(await main(process.argv.slice(2)));
