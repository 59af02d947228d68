// train.test.mjs — the acceptance flow with real training: upload the animal
// data, fine-tune stories260K, follow events/checkpoints, answer the test
// prompts with the ft: model (plain, streamed, .stream()), list and delete it;
// then kill -9 the server mid-training and check the job completes after a
// restart from its last checkpoint with the uploads intact.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import OpenAI from 'openai';
import { ANIMAL, readJsonl, sleep, startServer, tempDir } from './server.mjs';

const EPOCHS = Number(process.env.HONE_INTEG_EPOCHS || 1);

async function upload(client, name) {
  return client.files.create({ file: fs.createReadStream(path.join(ANIMAL, name)), purpose: 'fine-tune' });
}

async function waitFor(client, id, statuses, seconds = 480) {
  for (let i = 0; i < seconds * 4; i++) {
    const j = await client.fineTuning.jobs.retrieve(id);
    if (statuses.includes(j.status)) return j;
    await sleep(250);
  }
  throw new Error(`job ${id} did not reach ${statuses}`);
}

async function allEvents(client, id) {
  const out = [];
  for await (const e of client.fineTuning.jobs.listEvents(id, { limit: 100 })) out.push(e);
  return out.reverse(); // oldest first
}

describe('fine-tuning end to end', () => {
  test('train, inspect, chat with the ft: model, delete it', async () => {
    const srv = await startServer({ data: tempDir('train') });
    const client = new OpenAI({ baseURL: srv.baseURL, apiKey: 'x', maxRetries: 0 });
    try {
      const train = await upload(client, 'train.jsonl');
      const valid = await upload(client, 'valid.jsonl');
      const created = await client.fineTuning.jobs.create({
        model: 'stories260K', training_file: train.id, validation_file: valid.id, suffix: 'animals',
        hyperparameters: { n_epochs: EPOCHS }, seed: 42,
      });
      const job = await waitFor(client, created.id, ['succeeded', 'failed', 'cancelled']);
      assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
      assert.match(job.fine_tuned_model, /^ft:stories260K:personal:animals:[0-9A-Za-z]{8}$/);
      assert.ok(job.trained_tokens > 0);
      assert.equal(job.hyperparameters.n_epochs, EPOCHS);
      assert.equal(job.result_files.length, 1);

      const events = await allEvents(client, job.id);
      const msgs = events.map((e) => e.message);
      assert.equal(msgs[0], `Created fine-tuning job: ${job.id}`);
      assert.ok(msgs.indexOf('Files validated, moving job to queued state') > 0);
      assert.ok(msgs.indexOf('Fine-tuning job started') > msgs.indexOf('Files validated, moving job to queued state'));
      assert.equal(msgs.at(-1), 'The job has successfully completed');
      const metrics = events.filter((e) => e.type === 'metrics');
      assert.ok(metrics.length > 0);
      metrics.forEach((e, i) => {
        assert.equal(e.data.step, i + 1);
        assert.equal(typeof e.data.train_loss, 'number');
        assert.match(e.message, /^Step \d+\/\d+: training loss=/);
      });

      const ckpts = await client.fineTuning.jobs.checkpoints.list(job.id);
      assert.ok(ckpts.data.length >= 1);
      for (const c of ckpts.data) {
        assert.match(c.id, /^ftckpt_/);
        assert.equal(c.fine_tuned_model_checkpoint, `${job.fine_tuned_model}:ckpt-step-${c.step_number}`);
        assert.equal(typeof c.metrics.train_loss, 'number');
      }

      const csv = Buffer.from(await (await client.files.content(job.result_files[0])).text(), 'base64').toString();
      assert.match(csv, /^step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy\n1,/);

      const tests = readJsonl(path.join(ANIMAL, 'test.jsonl')).slice(0, 20);
      let right = 0, rightStream = 0, rightHelper = 0;
      for (const ex of tests) {
        const prompt = ex.messages.filter((m) => m.role !== 'assistant');
        const want = ex.messages.find((m) => m.role === 'assistant').content.trim();
        const r = await client.chat.completions.create({ model: job.fine_tuned_model, messages: prompt, temperature: 0, max_tokens: 16 });
        if (r.choices[0].message.content.trim() === want) right++;
        let text = '';
        const s = await client.chat.completions.create({ model: job.fine_tuned_model, messages: prompt, temperature: 0, max_tokens: 16, stream: true });
        for await (const chunk of s) text += chunk.choices[0]?.delta?.content ?? '';
        if (text.trim() === want) rightStream++;
        const h = await client.chat.completions.stream({ model: job.fine_tuned_model, messages: prompt, temperature: 0, max_tokens: 16 }).finalChatCompletion();
        if (h.choices[0].message.content.trim() === want) rightHelper++;
      }
      assert.ok(right >= 18, `${right}/20 right`);
      assert.ok(rightStream >= 18, `${rightStream}/20 right (stream)`);
      assert.ok(rightHelper >= 18, `${rightHelper}/20 right (.stream())`);

      const ids = (await client.models.list()).data.map((m) => m.id);
      assert.ok(ids.includes(job.fine_tuned_model));

      // download the fine-tuned model as GGUF and run it with the hone CLI
      const dl = await fetch(`${srv.baseURL}/models/${encodeURIComponent(job.fine_tuned_model)}/content?dtype=f32`,
        { headers: { Authorization: 'Bearer x' } });
      assert.equal(dl.status, 200);
      const gguf = Buffer.from(await dl.arrayBuffer());
      assert.equal(gguf.subarray(0, 4).toString(), 'GGUF');
      const file = path.join(tempDir('download'), 'ft.gguf');
      fs.writeFileSync(file, gguf);
      const ex = tests[0].messages;
      const reply = execFileSync(process.env.HONE_BIN, ['generate', '--model', file, '--chat', '--temperature', '0',
        '--system', ex[0].content, '--prompt', ex[1].content], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      assert.equal(reply.trim(), ex[2].content);
      await assert.rejects(client.fineTuning.jobs.cancel(job.id), (e) => e.status === 400);
      await assert.rejects(client.fineTuning.jobs.retrieve('ftjob-doesnotexist'), (e) => e.status === 404);
      const del = await client.models.delete(job.fine_tuned_model);
      assert.equal(del.deleted, true);
      await assert.rejects(client.models.retrieve(job.fine_tuned_model), (e) => e.status === 404);
    } finally {
      await srv.stop();
    }
  });

  test('kill -9 while a job runs: it resumes from its checkpoint after restart', async () => {
    const data = tempDir('train-kill9');
    let srv = await startServer({ data });
    try {
      let client = new OpenAI({ baseURL: srv.baseURL, apiKey: 'x', maxRetries: 0 });
      const train = await upload(client, 'train.jsonl');
      const job = await client.fineTuning.jobs.create({ model: 'stories260K', training_file: train.id, hyperparameters: { n_epochs: Math.max(2, EPOCHS) } });
      // Wait for the first checkpoint, then crash the server.
      for (let i = 0; i < 2400; i++) {
        if ((await client.fineTuning.jobs.checkpoints.list(job.id)).data.length) break;
        const j = await client.fineTuning.jobs.retrieve(job.id);
        assert.ok(!['failed', 'cancelled', 'succeeded'].includes(j.status), JSON.stringify(j.error));
        await sleep(250);
      }
      await srv.kill9();
      srv = await startServer({ data });
      client = new OpenAI({ baseURL: srv.baseURL, apiKey: 'x', maxRetries: 0 });
      const done = await waitFor(client, job.id, ['succeeded', 'failed', 'cancelled']);
      assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
      const msgs = (await allEvents(client, job.id)).map((e) => e.message);
      assert.ok(msgs.some((m) => /resume from its last checkpoint/.test(m)), msgs.join('\n'));
      const bytes = await (await client.files.content(train.id)).text();
      assert.equal(bytes, fs.readFileSync(path.join(ANIMAL, 'train.jsonl'), 'utf8'));
      const check = execFileSync('sqlite3', [path.join(data, 'hone.db'), 'PRAGMA integrity_check;'], { encoding: 'utf8' });
      assert.equal(check.trim(), 'ok');
    } finally {
      await srv.stop();
    }
  });

  test('pause a running job, then resume it: it finishes from the pause checkpoint', async () => {
    const srv = await startServer({ data: tempDir('train-pause') });
    const client = new OpenAI({ baseURL: srv.baseURL, apiKey: 'x', maxRetries: 0 });
    try {
      const train = await upload(client, 'train.jsonl');
      const job = await client.fineTuning.jobs.create({ model: 'stories260K', training_file: train.id, hyperparameters: { n_epochs: 2 } });
      await waitFor(client, job.id, ['running', 'succeeded', 'failed']);
      await sleep(500);
      const paused = await client.fineTuning.jobs.pause(job.id);
      assert.ok(['paused', 'succeeded'].includes(paused.status), JSON.stringify(paused));
      if (paused.status === 'paused') {
        const ck = await client.fineTuning.jobs.checkpoints.list(job.id);
        assert.ok(ck.data.length >= 1, 'a checkpoint is written on pause');
        await client.fineTuning.jobs.resume(job.id);
      }
      const done = await waitFor(client, job.id, ['succeeded', 'failed', 'cancelled']);
      assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
    } finally {
      await srv.stop();
    }
  });
});
