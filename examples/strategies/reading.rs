//! "Reading the results": sentences generated from the numbers of this run, so that the text
//! can never claim what the data does not show. Each picks the extremes of one table.

use std::cmp::Ordering;

use crate::plan::{CLIENT_COUNTS, HEAVY_CLIENTS};
use crate::report::{Results, code, duration, nanos, over_floor, percent, rate, ratio_text};
use crate::tokio_peer::TokioForm;
use crate::{mixed_report, responsiveness_report};

pub(crate) fn paragraphs(results: &Results) -> String {
    let mut parts: Vec<String> = Vec::new();
    if results.plan.quick {
        parts.push(
            "This was a quick run (`--quick`): the counts are too small for the numbers to \
             mean much; run without it for the real comparison."
                .to_owned(),
        );
    }
    parts.extend(throughput(results));
    parts.extend(responsiveness(results));
    parts.extend(tokio(results));
    parts.extend(heavy_against_tiny(results));
    parts.extend(mixed(results));
    parts.extend(crash(results));
    parts.extend(overhead(results));
    if parts.is_empty() {
        parts.push("No strategy could be measured; see the notes above.".to_owned());
    }
    let mut text = parts.join("\n\n");
    text.push('\n');
    text
}

/// The first and last of `items` by `key` (the same item when there is one).
fn extremes<T>(items: &[T], key: impl Fn(&T) -> f64) -> Option<(&T, &T)> {
    let order = |a: &&T, b: &&T| key(a).partial_cmp(&key(b)).unwrap_or(Ordering::Equal);
    Some((items.iter().min_by(order)?, items.iter().max_by(order)?))
}

fn throughput(results: &Results) -> Option<String> {
    let clients = 8;
    let at: Vec<_> = results
        .article
        .iter()
        .filter_map(|row| Some((row, row.point(clients)?)))
        .filter(|(_, p)| p.ok > 0)
        .collect();
    let (low, high) = extremes(&at, |(_, p)| p.requests_per_sec)?;
    let speedup = |row: &crate::article::Row| {
        row.speedup(clients)
            .map_or(String::new(), |s| format!(", {s:.2}x its 1-client rate"))
    };
    let mut text = format!(
        "At {clients} clients on {} cores the highest throughput was {}'s, {} requests/s{}.",
        results.machine.cores,
        code(&high.0.strategy),
        rate(high.1.requests_per_sec),
        speedup(high.0),
    );
    if at.len() > 1 {
        text += &format!(
            " The lowest was {}'s, {} requests/s{}.",
            code(&low.0.strategy),
            rate(low.1.requests_per_sec),
            speedup(low.0)
        );
    }
    let most = CLIENT_COUNTS[CLIENT_COUNTS.len() - 1];
    let over: Vec<_> = results
        .article
        .iter()
        .filter_map(|row| Some((row, row.point(most)?)))
        .filter(|(_, p)| p.ok > 0)
        .collect();
    if let Some((best, worst)) = extremes(&over, |(_, p)| p.p99.as_secs_f64())
        && over.len() > 1
    {
        text += &format!(
            " With {most} clients, p99 latency ranged from {} ({}) to {} ({}).",
            duration(best.1.p99),
            code(&best.0.strategy),
            duration(worst.1.p99),
            code(&worst.0.strategy),
        );
    }
    Some(text)
}

fn responsiveness(results: &Results) -> Option<String> {
    let measured: Vec<_> = results
        .responsiveness
        .iter()
        .filter_map(|row| Some((row, row.result.as_ref().ok()?)))
        .filter(|(_, m)| m.loaded.ok > 0)
        .collect();
    let (best, worst) = extremes(&measured, |(_, m)| m.loaded.p99.as_secs_f64())?;
    let describe = |(row, m): &(
        &crate::responsiveness::Row,
        &crate::responsiveness::Measured,
    )| {
        let kept = m.kept_fraction().map_or(String::new(), |k| {
            format!(", {} of its unloaded rate", percent(k))
        });
        format!(
            "{} (p99 {}, {} requests/s{kept})",
            code(&row.strategy),
            duration(m.loaded.p99),
            rate(m.loaded.requests_per_sec),
        )
    };
    let mut text = format!(
        "With {HEAVY_CLIENTS} heavy clients running, tiny requests fared best under {}",
        describe(best)
    );
    if measured.len() > 1 {
        text += &format!(" and worst under {}", describe(worst));
    }
    text.push('.');
    let never = results
        .responsiveness
        .iter()
        .filter_map(|row| Some((row, row.result.as_ref().ok()?)))
        .filter(|(_, m)| m.loaded.ok == 0)
        .map(|(row, _)| code(&row.strategy))
        .collect::<Vec<_>>();
    if !never.is_empty() {
        text += &format!(
            " Under {} no tiny request was answered during the window.",
            never.join(", ")
        );
    }
    Some(text)
}

/// Each tokio form against its ythread counterpart: throughput at 8 clients, tiny p99 under
/// heavy load.
fn tokio(results: &Results) -> Option<String> {
    let clients = 8;
    let sentences: Vec<String> = TokioForm::ALL
        .into_iter()
        .filter_map(|form| {
            let counterpart = results.ythread_counterpart(form)?;
            let rate_of = |label: &str| {
                results
                    .article
                    .iter()
                    .find(|row| row.strategy == label)?
                    .point(clients)
                    .map(|p| p.requests_per_sec)
                    .filter(|&r| r > 0.0)
            };
            let theirs = rate_of(&counterpart.label)?;
            let ours = rate_of(form.label())?;
            let mut text = format!(
                "{} served {} requests/s at {clients} clients, {} ythread {}'s",
                code(form.label()),
                rate(ours),
                ratio_text(ours / theirs),
                code(&counterpart.label)
            );
            if let (Some(tokio), Some(ythread)) = (
                responsiveness_report::measured(results, form.label()),
                responsiveness_report::measured(results, &counterpart.label),
            ) && tokio.loaded.ok > 0
                && ythread.loaded.ok > 0
            {
                text += &format!(
                    "; among heavy clients its tiny-request p99 was {} against {}",
                    duration(tokio.loaded.p99),
                    duration(ythread.loaded.p99)
                );
            }
            Some(text + ".")
        })
        .collect();
    (!sentences.is_empty()).then(|| sentences.join(" "))
}

/// Where a default served heavy requests more slowly than its fifo form: whether its tiny
/// client was answered far more often, which on a small machine takes CPU from heavy work.
fn heavy_against_tiny(results: &Results) -> Option<String> {
    let cases: Vec<String> = results
        .strategies
        .iter()
        .filter(|s| s.fifo_of.is_none())
        .filter_map(|s| {
            let fifo = results.fifo_form_of(&s.label)?;
            let ours = responsiveness_report::measured(results, &s.label)?;
            let theirs = responsiveness_report::measured(results, &fifo.label)?;
            let heavy = ours.heavy.requests_per_sec / theirs.heavy.requests_per_sec;
            let tiny = ours.loaded.requests_per_sec / theirs.loaded.requests_per_sec;
            (heavy < 0.9 && tiny > 10.0).then(|| {
                format!(
                    "{} ({} of its fifo form's heavy rate, while answering {} tiny requests/s against {})",
                    code(&s.label),
                    percent(heavy),
                    rate(ours.loaded.requests_per_sec),
                    rate(theirs.loaded.requests_per_sec)
                )
            })
        })
        .collect();
    (!cases.is_empty()).then(|| {
        format!(
            "Heavy throughput fell below the fifo form's under {}. The tiny client is a closed \
             loop: the faster it is answered, the more requests it sends, and each costs CPU \
             on both ends of the connection; the fifo form keeps the heavy rate by starving the \
             tiny client, which then costs nothing. On {} cores that CPU comes out of the heavy \
             work, the more so when the pool runs at a lower priority than the handlers.",
            cases.join(", "),
            results.machine.cores
        )
    })
}

/// The mixed section's extremes, and what learning changed against the fifo forms.
fn mixed(results: &Results) -> Option<String> {
    let measured: Vec<(&str, f64)> = results
        .mixed
        .iter()
        .filter_map(|row| {
            let m = row.result.as_ref().ok()?;
            Some((row.strategy.as_str(), m.slowdown?.mean))
        })
        .collect();
    let (best, worst) = extremes(&measured, |(_, mean)| *mean)?;
    let mut text = format!(
        "Under the mixed heavy-tailed load the lowest mean slowdown was {}'s ({:.1}x its \
         service time) and the highest {}'s ({:.1}x).",
        code(best.0),
        best.1,
        code(worst.0),
        worst.1
    );
    let changes: Vec<String> = results
        .strategies
        .iter()
        .filter(|s| s.fifo_of.is_none())
        .filter_map(|s| {
            let (mean, p99) = mixed_report::ratios_to_fifo(results, &s.label)?;
            Some(format!(
                "{} to {} of its fifo form's mean slowdown ({} of its p99)",
                code(&s.label),
                percent(mean),
                percent(p99)
            ))
        })
        .collect();
    if !changes.is_empty() {
        text += &format!(" Learned scheduling brought {}.", changes.join(", "));
    }
    Some(text)
}

fn crash(results: &Results) -> Option<String> {
    let outcomes: Vec<_> = results
        .crash
        .iter()
        .filter_map(|row| Some((row, row.result.as_ref().ok()?)))
        .collect();
    if outcomes.is_empty() {
        return None;
    }
    let died: Vec<String> = outcomes
        .iter()
        .filter(|(_, o)| !o.survived)
        .map(|(row, _)| code(&row.strategy))
        .collect();
    let mut sentences = Vec::new();
    if !died.is_empty() {
        sentences.push(format!(
            "One aborting task took the whole server process down under {}.",
            died.join(", ")
        ));
    }
    for (row, o) in outcomes.iter().filter(|(_, o)| o.survived) {
        let got = match &o.crash_reply {
            Ok(reply) if reply.starts_with("error:") => "an error reply",
            Ok(_) => "a reply",
            Err(_) => "no reply",
        };
        sentences.push(format!(
            "Under {} the server survived: the crash request got {got} and {} of the {} \
             requests after it were served.",
            code(&row.strategy),
            o.served_after,
            o.sent_after
        ));
    }
    Some(sentences.join(" "))
}

fn overhead(results: &Results) -> Option<String> {
    let trips: Vec<_> = results
        .overhead
        .iter()
        .filter_map(|row| Some((row, *row.result.as_ref().ok()?)))
        .collect();
    let (cheap, dear) = extremes(&trips, |(_, d)| d.as_secs_f64())?;
    let floor_ns = results.direct_call_ns;
    let against_floor = match over_floor(cheap.1, floor_ns) {
        Some(ratio) => format!("{ratio} a direct call of {}", nanos(floor_ns)),
        None => format!("a direct call takes {}", nanos(floor_ns)),
    };
    let mut text = format!(
        "A yield of tiny work cost {} under {} ({against_floor})",
        duration(cheap.1),
        code(&cheap.0.strategy),
    );
    if trips.len() > 1 {
        text += &format!(
            " and {} under {}{}",
            duration(dear.1),
            code(&dear.0.strategy),
            over_floor(dear.1, floor_ns).map_or(String::new(), |r| format!(" ({r})"))
        );
    }
    text.push('.');
    Some(text)
}
