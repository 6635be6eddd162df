#!/usr/bin/env node
// The `tokenbank` bin: runs bin/tokenbank.ts through tsx.
import { register } from "tsx/esm/api";

// The AWS SDK warns on every run that it will need Node 22 from 2027; the CLI is fine on 20.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
register();
await import("./tokenbank.ts");
