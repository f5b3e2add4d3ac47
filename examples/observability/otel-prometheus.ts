// OpenTelemetry metrics scraped by Prometheus: token-guard's otel() sink records decisions, latency, store calls
// and token-cache hits; the Prometheus exporter serves them on /metrics (loopback only here).
import { createServer } from 'node:http';
import { metrics } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { otel } from 'token-guard/otel';
import { ordersApp, listen } from './orders.js';

// The exporter's own server is left off: /metrics is mounted on a server of ours, bound to 127.0.0.1.
const exporter = new PrometheusExporter({ preventServerStart: true });
const meterProvider = new MeterProvider({ readers: [exporter] });
metrics.setGlobalMeterProvider(meterProvider);

// otel() reads the global providers by default; spans go wherever your tracing SDK sends them.
const { app, key, jwt } = await ordersApp({ telemetry: otel() });

const api = await listen(createServer(app), Number(process.env.PORT ?? 0));
const scrape = await listen(
  createServer((req, res) => {
    if (req.url === '/metrics') exporter.getMetricsRequestHandler(req, res);
    else res.writeHead(404).end();
  }),
  Number(process.env.METRICS_PORT ?? 0),
);
console.log(`orders API on ${api}, Prometheus metrics on ${scrape}/metrics\n`);
console.log(`curl -i ${api}/orders/42 -H "Authorization: Bearer ${jwt}"`);
console.log(`curl -i -X POST ${api}/orders -H "Authorization: Bearer ${key}"    # 403: this key may only read`);
console.log(`curl -s ${scrape}/metrics | grep token_guard\n`);
