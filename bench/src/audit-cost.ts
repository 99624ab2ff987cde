// What AUDIT's writes cost nats-server per event: the layout before issue #17 (each record its own
// message with a Nats-Msg-Id, and both index entries with every record) beside the coalesced one
// (audit-writer.ts: the stored record with its index, transform's two records in one message, the
// delivery alone, no msg ids), in alternating rounds on one server of its own. The records are those
// of one event of the end-to-end bench (stored, transformed for crm and warehouse, delivered).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditHeaders, type AuditRecord, auditMessages, auditMsgId, type Bus, connectBus, encodeAudit, loadBusConfig } from '@bus/bus';
import { encode } from '@bus/envelope';
import { spawnNatsServer } from '@bus/nats-server';
import { createLogger } from '@bus/observability';
import { entityKey, topology } from '@bus/streams';
import { headers as natsHeaders } from '@nats-io/nats-core';
import { procStats } from './proc.js';
import { fmt, percentile } from './stats.js';

function recordsOf(i: number, tag: string): AuditRecord[] {
  const base = { correlationId: `corr-${tag}-${i}`, at: new Date().toISOString(), eventId: `ev-${tag}-${i}`, source: 'shop', entity: { type: 'order', id: `o-${tag}-${i}` }, version: 1 };
  return [
    { ...base, stage: 'ingest', outcome: 'stored' },
    { ...base, stage: 'transform', outcome: 'transformed', connector: 'crm', details: { commands: [`crm:${base.eventId}`] } },
    { ...base, stage: 'transform', outcome: 'transformed', connector: 'warehouse', details: { commands: [`warehouse:${base.eventId}`] } },
    { ...base, stage: 'deliver', outcome: 'delivered', connector: 'warehouse', attempt: 1, status: 200, durationMs: 3 },
  ];
}

export async function auditWriteCost(o: { events: number; rounds: number }): Promise<void> {
  const storeDir = await mkdtemp(join(tmpdir(), 'bench-audit-cost-'));
  const server = await spawnNatsServer({ storeDir });
  const bus: Bus = await connectBus({ config: loadBusConfig({ NATS_URL: server.url, BUS_PREFIX: 'ac' }), name: 'bench-audit-cost', log: createLogger({ service: 'bench', level: 'silent' }) });
  try {
    await bus.applyTopology(topology({ prefix: 'ac' }));
    const n = bus.names;
    const pub = (subject: string, data: Uint8Array, msgId: string | undefined, hdrs: Record<string, string>) => {
      const h = natsHeaders();
      if (msgId) h.set('Nats-Msg-Id', msgId);
      for (const [k, v] of Object.entries(hdrs)) h.set(k, v);
      bus.nc.publish(subject, data, { headers: h }); // unawaited, as bus.audit writes
    };
    const before17 = (rs: AuditRecord[]) => {
      for (const r of rs) {
        const c = r.correlationId;
        const ix = { [AuditHeaders.CorrelationId]: c };
        pub(n.subjects.audit(c), encodeAudit(r), auditMsgId(r), { ...ix, [AuditHeaders.Stage]: r.stage, [AuditHeaders.Outcome]: r.outcome });
        pub(n.subjects.auditIndex.event(r.eventId!), encode({ key: r.eventId, correlationId: c }), `audit.ix.ev.${r.eventId}.${c}`, ix);
        pub(n.subjects.auditIndex.entity(r.entity!), encode({ key: entityKey(r.entity!), correlationId: c }), `audit.ix.en.${entityKey(r.entity!)}.${c}`, ix);
      }
    };
    const coalesced = ([stored, crm, warehouse, delivered]: AuditRecord[]) => {
      for (const m of [...auditMessages(n, [stored!]), ...auditMessages(n, [crm!, warehouse!], []), ...auditMessages(n, [delivered!], [])]) pub(m.subject, m.data, undefined, m.headers);
    };
    const storedCount = async () => (await bus.jsm.streams.info(n.streams.audit)).state.messages;
    const layouts = [
      { name: 'before #17: a message per record, index with every record, msg ids', write: before17, publishes: 12, stored: 6, cpu: [] as number[] },
      { name: 'coalesced (audit-writer.ts)', write: coalesced, publishes: 5, stored: 5, cpu: [] as number[] },
    ];
    for (let round = 0; round < o.rounds; round++) {
      for (const l of layouts) {
        const expect = (await storedCount()) + o.events * l.stored;
        const a = procStats(server.pid);
        for (let i = 0; i < o.events; i++) {
          l.write(recordsOf(i, `${l.publishes}r${round}`));
          if (i % 200 === 199) await bus.nc.flush();
        }
        while ((await storedCount()) < expect) await new Promise((r) => setTimeout(r, 20));
        const b = procStats(server.pid);
        if (a && b) l.cpu.push(((b.cpuMs - a.cpuMs) * 1000) / o.events);
      }
    }
    console.log(`\nAUDIT writes alone, nats-server CPU per event (${fmt(o.events)} events × ${o.rounds} rounds, alternating; median / max):`);
    console.log('| layout | publishes per event | stored | nats-server CPU per event |');
    console.log('|---|---:|---:|---:|');
    for (const l of layouts) console.log(`| ${l.name} | ${l.publishes} | ${l.stored} | ${l.cpu.length ? `${fmt(percentile(l.cpu, 50))} / ${fmt(Math.max(...l.cpu))} µs` : '-'} |`);
  } finally {
    await bus.close();
    await server.stop();
    await rm(storeDir, { recursive: true, force: true });
  }
}
