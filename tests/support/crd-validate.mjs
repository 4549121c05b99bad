// Validates the custom resources among the YAML documents on stdin (KEDA's keda.sh, the Prometheus operator's
// monitoring.coreos.com) against their projects' schemas, as packaged by @kubernetes-models (installed by
// deploy/native/test-tools.sh into the folder given as argument). kubernetes-validate knows only Kubernetes' own
// kinds; this covers the rest. Prints one line per resource; exits 1 when one is invalid or there is none.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const packages = { "keda.sh": "keda", "monitoring.coreos.com": "prometheus-operator" };
const modules = join(process.argv[2], "node_modules");
const load = (path) => import(pathToFileURL(join(modules, path)).href);
const { parseAllDocuments } = await load("yaml/dist/index.js");
const docs = parseAllDocuments(readFileSync(0, "utf8"))
  .map((d) => d.toJS())
  .filter((d) => packages[d?.apiVersion?.split("/")[0]]);
let failed = docs.length === 0;
for (const doc of docs) {
  const [group, version] = doc.apiVersion.split("/");
  const name = `${doc.kind}/${doc.metadata?.name}`;
  try {
    const module = await load(`@kubernetes-models/${packages[group]}/${group}/${version}/${doc.kind}.js`);
    new module[doc.kind](doc).validate();
    console.log(`ok ${name}`);
  } catch (e) {
    failed = true;
    console.log(`invalid ${name}: ${e.message}`);
  }
}
process.exit(failed ? 1 : 0);
