// The official JS real-time client, unchanged, against a server: node realtime.mjs
// Env: SM_NODE_MODULES, SM_RT_URL, SM_JWT, SM_AUDIO (a file), SM_AUDIO_FORMAT ("file" or "raw").
// Prints every message the client received, as one JSON array.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(`${process.env.SM_NODE_MODULES}/`);
const { RealtimeClient } = require("@speechmatics/real-time-client");

const raw = process.env.SM_AUDIO_FORMAT === "raw";
const audio = readFileSync(process.env.SM_AUDIO);
const received = [];
const client = new RealtimeClient({ url: process.env.SM_RT_URL });
client.addEventListener("receiveMessage", ({ data }) => received.push(data));

await client.start(process.env.SM_JWT, {
  transcription_config: { language: "en", enable_partials: true },
  ...(raw ? { audio_format: { type: "raw", encoding: "pcm_s16le", sample_rate: 16000 } } : {}),
});
const chunk = 3200;
for (let offset = raw ? 44 : 0; offset < audio.length; offset += chunk) {
  client.sendAudio(audio.subarray(offset, offset + chunk));
  await new Promise((resolve) => setTimeout(resolve, 1));
}
await client.stopRecognition();
console.log(JSON.stringify(received));
// The client leaves its timeout timers running; do not wait for them.
process.exit(0);
