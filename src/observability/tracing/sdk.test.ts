// CountingExporter: exports overlap (the batch processor gives up on a hung export after its own timeout and sends
// the next while the hung request still runs), and an outage is logged once, Failed then Recovered, whichever of
// them answers last. The inner exporter here is a stand-in whose answers the test gives in the order it wants.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import pino from 'pino';
import { CountingExporter, SpanCounts } from './sdk.js';

/** An exporter that answers each export when the test says so. */
class HeldExporter implements SpanExporter {
  readonly answers: Array<(result: ExportResult) => void> = [];
  export(_spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.answers.push(done);
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

const OK: ExportResult = { code: ExportResultCode.SUCCESS };
const FAILED: ExportResult = { code: ExportResultCode.FAILED, error: new Error('timeout') };
const spans = (n: number): ReadableSpan[] => Array.from({ length: n }, () => ({}) as ReadableSpan);

function setup(): { exporter: CountingExporter; inner: HeldExporter; counts: SpanCounts; messages: string[] } {
  const messages: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      messages.push((JSON.parse(chunk.toString()) as { msg: string }).msg);
      done();
    },
  });
  const inner = new HeldExporter();
  const counts = new SpanCounts();
  return { exporter: new CountingExporter(inner, counts, pino(sink)), inner, counts, messages };
}

const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

test('a hung export that fails after a later one succeeded is counted, and starts no second outage', async () => {
  const { exporter, inner, counts, messages } = setup();
  exporter.export(spans(5), () => undefined); // 1: hangs
  exporter.export(spans(3), () => undefined); // 2: sent while 1 hangs, fails (the outage begins)
  inner.answers[1]!(FAILED);
  exporter.export(spans(2), () => undefined); // 3: the collector is back
  inner.answers[2]!(OK);
  inner.answers[0]!(FAILED); // 1's own timeout, after 3's success
  await settle();
  assert.deepEqual(messages, ['Trace Export Failed', 'Trace Export Recovered']);
  assert.equal(counts.dropped, 8, 'both failed batches counted as dropped');
  exporter.export(spans(1), () => undefined); // 4: a new outage is still seen
  inner.answers[3]!(FAILED);
  await settle();
  assert.deepEqual(messages, ['Trace Export Failed', 'Trace Export Recovered', 'Trace Export Failed']);
});

test('an export sent before the outage began that succeeds late does not end it', async () => {
  const { exporter, inner, messages } = setup();
  exporter.export(spans(1), () => undefined); // 1: hangs
  exporter.export(spans(1), () => undefined); // 2: fails: the outage begins
  inner.answers[1]!(FAILED);
  inner.answers[0]!(OK); // 1 answers late, from before the outage
  exporter.export(spans(1), () => undefined); // 3: still failing
  inner.answers[2]!(FAILED);
  await settle();
  assert.deepEqual(messages, ['Trace Export Failed']);
  exporter.export(spans(1), () => undefined); // 4: the collector is back
  inner.answers[3]!(OK);
  await settle();
  assert.deepEqual(messages, ['Trace Export Failed', 'Trace Export Recovered']);
});
