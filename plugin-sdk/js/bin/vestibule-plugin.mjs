#!/usr/bin/env node
// vestibule-plugin build | test — run in a plugin's folder.
//
//   build   bundle the plugin (TypeScript or JavaScript, with what it
//           imports) and make it a WebAssembly component for its world
//   test    run its tests (test/**/*.test.{ts,js}) with node's test runner
//
// The plugin's package.json says its world: { "vestibule": { "world":
// "filter" } }, and may name its entry ("src/plugin.ts") and the component
// ("dist/NAME.wasm").

import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { basename, dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const sdk = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(import.meta.url);

// The engines a plugin can be built with, each with the flags the host
// needs. QuickJS is the default: measured here, a fresh instance and a call
// cost a third of StarlingMonkey's, its component is 7× smaller and builds
// 5× faster (see the SDK's README).
const ENGINES = {
  quickjs: {
    // `--sync`: the default async runtime needs the component-model async
    // ABI, which the host does not enable. Not `--stub-wasi`: it makes
    // `Date.now()` trap, and the host gives the event's clock.
    build(wit, world, bundle, output) {
      const bin = join(dirname(require.resolve("componentize-qjs/package.json")), "bin", "componentize-qjs");
      return [process.execPath, [bin, "-w", wit, "-n", world, "-j", bundle, "--sync", "-o", output]];
    },
    // Imports are default exports, options are null, s64 is a number.
    imports: (name) => `import ${name} from "vestibule:plugin/${name}@0.1.0";`,
    bigints: false,
  },
};

const EXPORTS = { filter: "filter", enricher: "enrich", action: "act" };

function fail(message) {
  console.error(`vestibule-plugin: ${message}`);
  process.exit(1);
}

function manifest(dir) {
  const path = join(dir, "package.json");
  if (!existsSync(path)) fail(`no package.json in ${dir}`);
  const pkg = JSON.parse(readFileSync(path, "utf8"));
  const v = pkg.vestibule ?? {};
  if (!(v.world in EXPORTS)) {
    fail(`${path}: "vestibule": { "world": … } must be one of ${Object.keys(EXPORTS).join(", ")}, not ${JSON.stringify(v.world)}`);
  }
  const entry = v.entry ?? ["src/plugin.ts", "src/plugin.js"].find((e) => existsSync(join(dir, e)));
  if (!entry || !existsSync(join(dir, entry))) fail(`${path}: no entry: name it in "vestibule": { "entry": … } or write src/plugin.ts`);
  const name = (pkg.name ?? basename(dir)).replace(/^@[^/]+\//, "");
  return { world: v.world, entry: resolve(dir, entry), output: resolve(dir, v.output ?? `dist/${name}.wasm`) };
}

function esbuild(options) {
  return require("esbuild").buildSync({ bundle: true, format: "esm", logLevel: "error", ...options });
}

function build(dir, args) {
  const engineName = option(args, "--engine") ?? "quickjs";
  const engine = ENGINES[engineName] ?? fail(`unknown engine ${engineName}: ${Object.keys(ENGINES).join(", ")}`);
  const { world, entry, output } = manifest(dir);
  const started = Date.now();
  const work = mkdtempSync(join(tmpdir(), "vestibule-plugin-"));
  try {
    const sinks = world === "action";
    const main = join(work, "main.js");
    writeFileSync(
      main,
      [
        engine.imports("host"),
        sinks ? engine.imports("sinks") : "",
        `import plugin from ${JSON.stringify(entry)};`,
        `import { exportsFor } from ${JSON.stringify(join(sdk, "src", "component.ts"))};`,
        `const { call, checkConfig } = exportsFor(${JSON.stringify(world)}, plugin, host, ${sinks ? "sinks" : "undefined"}, ${engine.bigints});`,
        `export { call as ${EXPORTS[world]}, checkConfig };`,
      ].join("\n"),
    );
    const bundle = join(work, "bundle.js");
    esbuild({ entryPoints: [main], outfile: bundle, platform: "neutral", target: "es2022", external: ["vestibule:plugin/*"] });
    mkdirSync(dirname(output), { recursive: true });
    const [command, argv] = engine.build(join(sdk, "wit"), world, bundle, output);
    const done = spawnSync(command, argv, { encoding: "utf8" });
    if (done.status !== 0) fail(`${engineName} could not build ${relative(dir, entry)}:\n${done.stderr || done.stdout}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const size = (statSync(output).size / 1e6).toFixed(1);
  console.log(`built ${relative(dir, output)} (${world}, ${engineName}, ${size} MB) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

function testFiles(dir) {
  const found = [];
  const walk = (d) => {
    for (const name of readdirSync(d)) {
      const path = join(d, name);
      if (name === "node_modules" || name.startsWith(".")) continue;
      if (statSync(path).isDirectory()) walk(path);
      else if (/\.test\.(ts|js|mjs)$/.test(name)) found.push(path);
    }
  };
  for (const d of ["test", "src"]) if (existsSync(join(dir, d))) walk(join(dir, d));
  return found.sort();
}

function test(dir) {
  const files = testFiles(dir);
  if (files.length === 0) fail(`no tests in ${dir} (test/**/*.test.ts)`);
  const work = mkdtempSync(join(tmpdir(), "vestibule-plugin-test-"));
  try {
    const outputs = files.map((file, i) => {
      const outfile = join(work, `${i}-${basename(file).replace(/\.(ts|js|mjs)$/, ".mjs")}`);
      esbuild({ entryPoints: [file], outfile, platform: "node", target: "node20", sourcemap: "inline" });
      return outfile;
    });
    const done = spawnSync(process.execPath, ["--enable-source-maps", "--test", ...outputs], { stdio: "inherit" });
    return done.status ?? 1;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function option(args, name) {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

const [command, ...args] = process.argv.slice(2);
const dir = resolve(option(args, "--dir") ?? process.cwd());
switch (command) {
  case "build":
    build(dir, args);
    break;
  case "test":
    process.exit(test(dir));
  default:
    fail("usage: vestibule-plugin build [--engine quickjs] | test");
}
