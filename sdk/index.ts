/** The tokenbank client SDK: `import { TokenBankClient } from "tokenbank/sdk"`. */
export {
  type BucketResult,
  type RateResult,
  TokenBankClient,
  type TokenBankClientOptions,
  TokenBankError,
  withRateLimit,
} from "./client.js";
