// Validates Kubernetes custom resources (Traefik, KEDA, Istio, CloudNativePG) against their
// CRD schemas, using the validators the @kubernetes-models packages ship.
//
//   node validate-crds.mjs < documents.json     (a JSON array of resources)
//
// The packages are found in $KINO_MANIFEST_TOOLS/node_modules (deploy/local/deps installs
// them there from package.json/package-lock.json beside this file). Prints one line per
// resource; exits 1 if any resource is invalid or of a kind no package models, 2 on a
// setup error.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const tools = process.env.KINO_MANIFEST_TOOLS;
if (!tools) {
  console.error("KINO_MANIFEST_TOOLS is not set (run deploy/local/deps)");
  process.exit(2);
}
const PACKAGES = ["traefik", "keda", "istio", "cloudnative-pg"];

// apiVersion -> kind -> model class, from every <group>/<version>/index.js of each package.
const models = new Map();
for (const pkg of PACKAGES) {
  const root = join(tools, "node_modules", "@kubernetes-models", pkg);
  for (const group of readdirSync(root)) {
    if (!group.includes(".") || !statSync(join(root, group)).isDirectory()) continue;
    for (const version of readdirSync(join(root, group))) {
      const index = join(root, group, version, "index.js");
      let module;
      try {
        module = await import(pathToFileURL(index).href);
      } catch {
        continue; // not a version directory
      }
      for (const model of Object.values(module)) {
        if (typeof model !== "function" || !model.apiVersion || !model.kind) continue;
        if (!models.has(model.apiVersion)) models.set(model.apiVersion, new Map());
        models.get(model.apiVersion).set(model.kind, model);
      }
    }
  }
}
if (models.size === 0) {
  console.error(`no models found under ${tools}/node_modules/@kubernetes-models`);
  process.exit(2);
}

const documents = JSON.parse(readFileSync(0, "utf8"));
let failed = 0;
for (const doc of documents) {
  const name = `${doc.apiVersion} ${doc.kind} ${doc.metadata?.name ?? "(unnamed)"}`;
  const Model = models.get(doc.apiVersion)?.get(doc.kind);
  if (!Model) {
    console.log(`error ${name}: no schema for this apiVersion and kind`);
    failed++;
    continue;
  }
  try {
    new Model(doc).validate();
    console.log(`ok ${name}`);
  } catch (e) {
    console.log(`error ${name}: ${String(e.message ?? e).replace(/\s+/g, " ")}`);
    failed++;
  }
}
process.exit(failed ? 1 : 0);
