#!/usr/bin/env node
// The `tokenbank` bin: runs bin/tokenbank.ts through tsx.
import { register } from "tsx/esm/api";

register();
await import("./tokenbank.ts");
