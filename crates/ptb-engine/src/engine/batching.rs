//! Continuous batching: up to `max_batch` requests decode together, and the slot of a
//! finished request is refilled with the next pending one at the following step, instead of
//! idling until the longest request of a fixed batch ends.
//!
//! Rows share one KV-cache length (left padding, see [`crate::model`]). Joining
//! requests are prefilled as a group and their cache is spliced in, the shorter side padded
//! in front, so every row still computes what it would alone. Each request keeps its own
//! sampler, so seeded results do not depend on which slot or neighbours it got.

use std::time::{Duration, Instant};

use burn::prelude::Backend;
use rayon::prelude::*;

use super::{Completion, Engine, FinishReason, Reporter, Request, host, host_into};
use crate::error::{EvalError, Result};
use crate::model::{Batch, KvCache};
use crate::sampling::{Rng, sample};

/// A request while it decodes.
struct Slot<'a> {
    /// Position in the caller's request list.
    index: usize,
    req: &'a Request,
    prompt_tokens: usize,
    rng: Rng,
    generated: Vec<u32>,
    /// The completion's text cut before its stop string, once one has ended it.
    stopped_text: Option<String>,
    /// Padding positions in front of this row in the shared cache.
    pad: usize,
    prefill_time: Duration,
    decode_start: Instant,
}

impl<B: Backend> Engine<B> {
    /// Completions for `order` (indices into `requests` and `prompts`), admitted in that order;
    /// the result is indexed like `requests`.
    pub(super) fn generate_continuous(
        &self,
        requests: &[Request],
        prompts: &[Vec<u32>],
        order: &[usize],
        reporter: &dyn Reporter,
    ) -> Result<Vec<Option<Completion>>> {
        let max_batch = self.options.max_batch.max(1);
        let v = self.model.cfg.vocab_size;
        let mut out: Vec<Option<Completion>> = vec![None; requests.len()];
        let mut pending = order.iter().copied().peekable();
        let mut live: Vec<Slot> = Vec::with_capacity(max_batch);
        let mut cache = KvCache::new(self.model.cfg.num_layers);
        // `[live row][vocab]`: the logits each live row samples its next token from.
        let mut logits: Vec<f32> = vec![];
        loop {
            let joining = self.admit(&mut pending, &live, max_batch, requests, prompts)?;
            if !joining.is_empty() {
                let (mut slots, new_cache, new_logits) = self.prefill(&joining, requests, prompts, reporter)?;
                let (front_live, front_new) = cache.append_rows(new_cache);
                live.iter_mut().for_each(|s| s.pad += front_live);
                slots.iter_mut().for_each(|s| s.pad += front_new);
                live.extend(slots);
                logits.extend(new_logits);
            }
            if live.is_empty() {
                break;
            }
            let mut keep = Vec::with_capacity(live.len());
            let mut next = Vec::with_capacity(live.len());
            let mut finished = vec![];
            // Rows sample in parallel (each with its own generator, so the tokens are those of
            // a serial loop): at batch 64 a serial loop over a 152k vocabulary kept a GPU waiting.
            let toks: Vec<u32> = live.par_iter_mut().zip(logits.par_chunks(v)).map(|(slot, row)| sample(row, &slot.req.sampling, &mut slot.rng)).collect();
            for ((row, slot), tok) in live.iter_mut().enumerate().zip(toks) {
                match self.advance(slot, tok)? {
                    Some(reason) => finished.push((row, reason)),
                    None => {
                        keep.push(row);
                        next.push(vec![tok]);
                    }
                }
            }
            reporter.tokens_generated(live.len());
            for &(row, reason) in &finished {
                let slot = &mut live[row];
                out[slot.index] = Some(self.complete(slot, reason)?);
                reporter.request_finished(slot.index);
            }
            if keep.is_empty() {
                live.clear();
                logits.clear();
                cache = KvCache::new(self.model.cfg.num_layers);
                continue;
            }
            if keep.len() < live.len() {
                cache.retain_rows(&keep, self.model.device());
                let mut rows = std::mem::take(&mut live).into_iter().map(Some).collect::<Vec<_>>();
                live = keep.iter().map(|&r| rows[r].take().expect("each row kept once")).collect();
            }
            let trim = live.iter().map(|s| s.pad).min().unwrap_or(0);
            cache.trim_front(trim);
            live.iter_mut().for_each(|s| s.pad -= trim);
            let pad = live.iter().map(|s| s.pad).collect();
            let step = self.model.forward(&next, &Batch { pad }, &mut cache, true);
            host_into(step, &mut logits)?;
        }
        Ok(out)
    }

    /// The pending requests that join now: up to `max_batch` rows, and with a memory budget
    /// only while the KV cache could hold every row at its longest. Rows share one cache
    /// length, at most the longest row's prompt + max_new_tokens, so the cache never exceeds
    /// rows × that many positions, twice over (the device cache doubles when full). A request
    /// too long to run even alone is an error before anything is generated for it. The
    /// joining group is prefilled at once, so it also stops growing where its prefill would
    /// outgrow the working memory (a single prompt joins regardless: it cannot be split).
    fn admit(
        &self,
        pending: &mut std::iter::Peekable<impl Iterator<Item = usize>>,
        live: &[Slot],
        max_batch: usize,
        requests: &[Request],
        prompts: &[Vec<u32>],
    ) -> Result<Vec<usize>> {
        let budget = self.kv_budget();
        let working = super::working_budget(&self.options);
        let per_position = 2 * self.model.kv_bytes_per_position();
        let mut longest_prompt = 0;
        let need = |prompt: usize, req: &Request| (prompt + req.max_new_tokens) as u64;
        let mut longest = live.iter().map(|s| need(s.prompt_tokens, s.req)).max().unwrap_or(0);
        let mut joining = vec![];
        while live.len() + joining.len() < max_batch {
            let Some(&i) = pending.peek() else { break };
            let longer = longest.max(need(prompts[i].len(), &requests[i]));
            let rows = (live.len() + joining.len() + 1) as u64;
            if let Some(budget) = budget.filter(|&b| rows * longer * per_position > b) {
                if live.is_empty() && joining.is_empty() {
                    let problem = format!(
                        "{} prompt + {} new tokens need {} of KV cache; the device leaves {} for it: \
                         lower max_new_tokens, a shorter prompt or a larger device",
                        prompts[i].len(),
                        requests[i].max_new_tokens,
                        super::human_bytes(longer * per_position),
                        super::human_bytes(budget)
                    );
                    return Err(EvalError::Request { index: i, problem });
                }
                break;
            }
            let padded = longest_prompt.max(prompts[i].len());
            if !joining.is_empty() && working.is_some_and(|w| self.model.prefill_bytes(joining.len() + 1, padded) > w) {
                break;
            }
            longest = longer;
            longest_prompt = padded;
            joining.push(i);
            pending.next();
        }
        Ok(joining)
    }

    /// Runs the prompts of `joining` as one left-padded batch in a fresh cache.
    fn prefill<'a>(
        &self,
        joining: &[usize],
        requests: &'a [Request],
        prompts: &[Vec<u32>],
        reporter: &dyn Reporter,
    ) -> Result<(Vec<Slot<'a>>, KvCache<B>, Vec<f32>)> {
        let longest = joining.iter().map(|&i| prompts[i].len()).max().unwrap_or(0);
        let pad_id = self.eos.first().copied().unwrap_or(0);
        let pad: Vec<usize> = joining.iter().map(|&i| longest - prompts[i].len()).collect();
        let tokens: Vec<Vec<u32>> =
            joining.iter().zip(&pad).map(|(&i, &p)| std::iter::repeat_n(pad_id, p).chain(prompts[i].iter().copied()).collect()).collect();
        reporter.batch_started(joining.len(), joining.iter().map(|&i| prompts[i].len()).sum());
        let start = Instant::now();
        let mut cache = KvCache::new(self.model.cfg.num_layers);
        let logits = host(self.model.forward(&tokens, &Batch { pad: pad.clone() }, &mut cache, true))?;
        let prefill_time = start.elapsed();
        let decode_start = Instant::now();
        let slots = joining
            .iter()
            .zip(pad)
            .map(|(&index, pad)| Slot {
                index,
                req: &requests[index],
                prompt_tokens: prompts[index].len(),
                rng: Rng::new(requests[index].sampling.seed),
                generated: vec![],
                stopped_text: None,
                pad,
                prefill_time,
                decode_start,
            })
            .collect();
        Ok((slots, cache, logits))
    }

    /// Takes the sampled token `tok`; says why the request ends, if it does.
    fn advance(&self, slot: &mut Slot, tok: u32) -> Result<Option<FinishReason>> {
        let req = slot.req;
        if !req.ignore_eos && self.eos.contains(&tok) {
            return Ok(Some(FinishReason::Eos));
        }
        slot.generated.push(tok);
        if !req.stop.is_empty() && self.stop_in_tail(&slot.generated, &req.stop)? {
            // The whole text once, for where the first stop string starts.
            let mut text = self.decode(&slot.generated)?;
            if let Some(cut) = super::first_stop(&text, &req.stop) {
                text.truncate(cut);
                slot.stopped_text = Some(text);
                return Ok(Some(FinishReason::Stop));
            }
        }
        Ok((slot.generated.len() >= req.max_new_tokens).then_some(FinishReason::Length))
    }

    /// Whether the newest token may have completed a stop string, decoding only the last
    /// tokens: decoding the whole completion at every step was quadratic in its length.
    ///
    /// A stop string of L bytes that ends in the newest token's text starts at most L - 1
    /// bytes before it, so L - 1 earlier tokens of at least a byte each hold it; the window
    /// has 4 more, as margin for what a decode starting mid-text drops (a leading space, a
    /// split character), and doubles while it decodes to fewer than twice that many bytes
    /// (tokens that decode to nothing). A false alarm only costs one whole decode.
    fn stop_in_tail(&self, generated: &[u32], stops: &[String]) -> Result<bool> {
        let want = stops.iter().map(String::len).max().unwrap_or(0) + 4;
        let mut window = want;
        loop {
            let from = generated.len().saturating_sub(window);
            let tail = self.decode(&generated[from..])?;
            if from == 0 || tail.len() >= 2 * want {
                return Ok(super::first_stop(&tail, stops).is_some());
            }
            window *= 2;
        }
    }

    fn complete(&self, slot: &mut Slot, reason: FinishReason) -> Result<Completion> {
        let text = match slot.stopped_text.take() {
            Some(text) => text,
            None => self.decode(&slot.generated)?,
        };
        Ok(Completion {
            text,
            completion_tokens: slot.generated.len(),
            token_ids: std::mem::take(&mut slot.generated),
            prompt_tokens: slot.prompt_tokens,
            finish_reason: reason,
            prefill_time: slot.prefill_time,
            decode_time: slot.decode_start.elapsed(),
        })
    }
}
