/** Starts DynamoDB Local once per test run and hands its endpoint to every test file. */
import type { TestProject } from "vitest/node";
import { startDynamoLocal } from "../../local/dynamodb-local.js";

declare module "vitest" {
  export interface ProvidedContext {
    dynamoEndpoint: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const ddb = await startDynamoLocal();
  project.provide("dynamoEndpoint", ddb.endpoint);
  return ddb.stop;
}
