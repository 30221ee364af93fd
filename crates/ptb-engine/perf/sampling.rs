//! Host time to choose one row's next token from a Qwen3-sized vocabulary (151,936 logits),
//! with each family's vLLM defaults, beside the same definition done the plain way (the whole
//! vocabulary sorted; for greedy, the scalar loop) in the same process:
//!
//!   cargo bench -p ptb-engine --bench sampling
//!
//! A decode step samples every live row on the host, so at batch 64 this is per-step time a
//! GPU waits on. So is the step's logits landing on the host (`ptb_engine::readback`): then
//! 64 rows, 16-bit from a GPU, widened into the last step's buffer, beside what the engine
//! did before (f32 read off the device, copied into a fresh vector) and a fresh buffer.

use std::time::Instant;

use burn::tensor::TensorData;
use ptb_engine::readback::data_into;
use ptb_engine::sampling::{Rng, Sampling, sample, sample_by_full_sort};

const VOCAB: usize = 151_936;
const ROUNDS: usize = 15;

/// Medians in µs of `ROUNDS` timings of each of `cases`, taken in turn so all see the same
/// machine.
fn medians_us(cases: &mut [&mut dyn FnMut()]) -> Vec<f64> {
    let mut times = vec![Vec::with_capacity(ROUNDS); cases.len()];
    for _ in 0..ROUNDS {
        for (f, t) in cases.iter_mut().zip(&mut times) {
            let start = Instant::now();
            f();
            t.push(start.elapsed().as_secs_f64() * 1e6);
        }
    }
    times
        .into_iter()
        .map(|mut t| {
            t.sort_by(f64::total_cmp);
            t[ROUNDS / 2]
        })
        .collect()
}

fn main() {
    // Roughly a language model's: most logits far below a few leading ones.
    let mut rng = Rng::new(1);
    let logits: Vec<f32> = (0..VOCAB).map(|_| (rng.next_f64() as f32 - 0.5) * 8.0 + if rng.next_u64().is_multiple_of(5000) { 12.0 } else { 0.0 }).collect();
    let cases = [
        ("greedy", Sampling::default()),
        ("Qwen3 (T 0.6, top-k 20, top-p 0.95)", Sampling { temperature: 0.6, top_p: 0.95, top_k: 20, seed: 0 }),
        ("Gemma 3 (T 1.0, top-k 64, top-p 0.95)", Sampling { temperature: 1.0, top_p: 0.95, top_k: 64, seed: 0 }),
        ("SmolLM3 (T 0.6, top-p 0.95, no top-k)", Sampling { temperature: 0.6, top_p: 0.95, top_k: 0, seed: 0 }),
        ("vLLM's own (T 1.0, no cut)", Sampling { temperature: 1.0, top_p: 1.0, top_k: 0, seed: 0 }),
    ];
    for (name, p) in cases {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        let m = medians_us(&mut [
            &mut || {
                std::hint::black_box(sample_by_full_sort(&logits, &p, &mut a));
            },
            &mut || {
                std::hint::black_box(sample(&logits, &p, &mut b));
            },
        ]);
        let (full, fast) = (m[0], m[1]);
        println!("{name:<40} plain {full:>8.0} µs, ptb {fast:>8.0} µs: {:>6.1}×", full / fast);
    }
    readback(&logits);
}

/// A batch-64 step's logits onto the host, from the device read's `TensorData` on.
fn readback(row: &[f32]) {
    const ROWS: usize = 64;
    let f32s: Vec<f32> = (0..ROWS).flat_map(|_| row.iter().copied()).collect();
    let bf16s: Vec<half::bf16> = f32s.iter().map(|&x| half::bf16::from_f32(x)).collect();
    let shape = [ROWS, 1, VOCAB];
    let mut reused = vec![];
    data_into(TensorData::new(bf16s.clone(), shape), &mut reused).unwrap();
    // Each case starts by making what a device read hands over, in a fresh allocation as
    // the read's is: 39 MB of f32 before, 19 MB of bf16 now.
    let ms = medians_us(&mut [
        &mut || {
            let data = TensorData::new(f32s.clone(), shape);
            std::hint::black_box(data.to_vec::<f32>().unwrap());
        },
        &mut || {
            let mut out = vec![];
            data_into(TensorData::new(bf16s.clone(), shape), &mut out).unwrap();
            std::hint::black_box(out);
        },
        &mut || {
            data_into(TensorData::new(bf16s.clone(), shape), &mut reused).unwrap();
            std::hint::black_box(&reused);
        },
    ]);
    let [before, fresh, now] = [ms[0] / 1e3, ms[1] / 1e3, ms[2] / 1e3];
    println!(
        "logits of a batch-64 step onto the host: f32 copied into a fresh vector {before:.1} ms, \
         bf16 widened into a fresh one {fresh:.1} ms, into the last step's {now:.1} ms: {:.1}× (and half the bytes off the device)",
        before / now
    );
}
