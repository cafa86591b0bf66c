// The official JS batch client, unchanged, against a server: node batch.mjs
// Env: SM_NODE_MODULES, SM_BATCH_URL (ending in /v2), SM_API_KEY, SM_AUDIO.
// Transcribes the file (json-v2), fetches the same job as txt and srt, then provokes errors;
// prints what it got as one JSON object.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(`${process.env.SM_NODE_MODULES}/`);
const { BatchClient } = require("@speechmatics/batch-client");

const apiUrl = process.env.SM_BATCH_URL.replace(/\/v2$/, "");
const client = new BatchClient({ apiKey: process.env.SM_API_KEY, apiUrl });
const input = { data: new Blob([readFileSync(process.env.SM_AUDIO)]), fileName: "speech.wav" };
const config = { transcription_config: { language: "en", diarization: "speaker" } };

const json = await client.transcribe(input, config, "json-v2", 60_000);
const txt = await client.getJobResult(json.job.id, "text");
const srt = await client.getJobResult(json.job.id, "srt");
const listed = await client.listJobs();

async function failure(call) {
  try {
    await call();
    return { name: "no error" };
  } catch (error) {
    return { name: error.name, error: error.error ?? null, response: error.response ?? null };
  }
}
const errors = {
  missingJob: await failure(() => client.getJob("nosuchjob")),
  badLanguage: await failure(() =>
    client.createTranscriptionJob(input, { transcription_config: { language: "xx" } }),
  ),
  otherProduct: await failure(() => client.get("/v2/agent", "application/json")),
  wrongKey: await failure(() =>
    new BatchClient({ apiKey: "wrong", apiUrl }).listJobs(),
  ),
};
console.log(JSON.stringify({ json, txt, srt, listed: listed.jobs.length, errors }));
// The client leaves its timeout timers running; do not wait for them.
process.exit(0);
