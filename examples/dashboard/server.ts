// The live dashboard: the guard feeds a decisionRecorder, and dashboardHandler serves a page over it on a
// second server bound to 127.0.0.1 (never the app's public port). Open the printed URL and send some traffic.
import { createServer } from 'node:http';
import { dashboardHandler, decisionRecorder } from 'token-guard/dashboard';
import { ordersApp, listen } from '../observability/orders.js';

const recorder = decisionRecorder();
const { app, store, key, jwt } = await ordersApp({ onDecision: recorder.onDecision });

const api = await listen(createServer(app), Number(process.env.PORT ?? 0));
// Loopback only: dashboardHandler also refuses non-loopback clients and Host names unless allowRemote.
const dashboard = await listen(createServer(dashboardHandler({ recorder, store })), Number(process.env.DASHBOARD_PORT ?? 0));
console.log(`orders API on ${api}, dashboard on ${dashboard}/\n`);
console.log(`curl -i ${api}/orders/42 -H "Authorization: Bearer ${jwt}"`);
console.log(`curl -i -X POST ${api}/orders -H "Authorization: Bearer ${key}"    # 403: shows up under refusals\n`);
