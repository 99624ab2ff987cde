// The example's issue tracker as a process: TRACKER_PORT (8095), TRACKER_API_KEY (demo-tracker-key).
import { startTracker } from './tracker.js';

const apiKey = process.env.TRACKER_API_KEY || 'demo-tracker-key';
const tracker = await startTracker({ apiKey, port: Number(process.env.TRACKER_PORT || 8095) });
console.log(`issue tracker listening on ${tracker.url} (GET /issues lists them; x-api-key: ${process.env.TRACKER_API_KEY ? '<TRACKER_API_KEY>' : apiKey})`);
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void tracker.close().then(() => process.exit(0)));
