//! Small server-rendered SVG line charts for the overview: no script, no inline style (the page
//! policy allows neither), colours from the stylesheet's `.sparkline` rules. Gaps (minutes
//! without a sample) break the line rather than being drawn as zero.

use std::fmt::Write;

use super::escape;

/// An SVG `width`×`height` drawing `values` left (oldest) to right, labelled for screen readers
/// with `label`. Longer series are reduced to one point per horizontal pixel, keeping each
/// bucket's highest value so a short spike stays visible.
pub fn sparkline(values: &[Option<f64>], width: u32, height: u32, label: &str) -> String {
    let width = width.max(2);
    let height = height.max(2);
    let points = downsample(values, width as usize);
    let label = escape(label);
    let mut svg = format!(
        r#"<svg class="sparkline" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" aria-label="{label}"><title>{label}</title>"#
    );
    let known = points.iter().flatten();
    let (low, high) = known.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(*v), hi.max(*v))
    });
    if low.is_finite() {
        // Counts start at zero so that "a few" does not look like "many"; negative values
        // (none of today's series) would lower the floor.
        let low = low.min(0.0);
        let span = if high > low { high - low } else { 1.0 };
        let step = if points.len() > 1 {
            f64::from(width - 1) / (points.len() - 1) as f64
        } else {
            0.0
        };
        // One pixel of margin so the stroke is not clipped at the top and bottom.
        let usable = f64::from(height - 2);
        let mut segment = String::new();
        for (i, point) in points.iter().enumerate() {
            match point {
                Some(v) => {
                    let x = step * i as f64;
                    let y = 1.0 + usable - (v - low) / span * usable;
                    let _ = write!(segment, "{x:.1},{y:.1} ");
                }
                None => flush(&mut svg, &mut segment),
            }
        }
        flush(&mut svg, &mut segment);
    }
    svg.push_str("</svg>");
    svg
}

fn flush(svg: &mut String, segment: &mut String) {
    if segment.is_empty() {
        return;
    }
    let _ = write!(svg, r#"<polyline points="{}"/>"#, segment.trim_end());
    segment.clear();
}

/// At most `buckets` points, each the highest value of its slice of `values`.
fn downsample(values: &[Option<f64>], buckets: usize) -> Vec<Option<f64>> {
    if values.len() <= buckets {
        return values.to_vec();
    }
    (0..buckets)
        .map(|b| {
            let start = b * values.len() / buckets;
            let end = ((b + 1) * values.len() / buckets).max(start + 1);
            values[start..end]
                .iter()
                .flatten()
                .copied()
                .fold(None, |acc: Option<f64>, v| {
                    Some(acc.map_or(v, |a| a.max(v)))
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn polylines(svg: &str) -> Vec<Vec<(f64, f64)>> {
        svg.split(r#"<polyline points=""#)
            .skip(1)
            .map(|rest| {
                rest.split('"')
                    .next()
                    .unwrap()
                    .split(' ')
                    .map(|p| {
                        let (x, y) = p.split_once(',').unwrap();
                        (x.parse().unwrap(), y.parse().unwrap())
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn a_series_is_drawn_from_left_to_right_with_higher_values_higher_up() {
        let svg = sparkline(&[Some(0.0), Some(5.0), Some(10.0)], 101, 22, "commands");
        let lines = polylines(&svg);
        assert_eq!(lines.len(), 1);
        let line = &lines[0];
        assert_eq!(line.len(), 3);
        assert_eq!(line[0], (0.0, 21.0), "zero at the bottom");
        assert_eq!(line[1], (50.0, 11.0));
        assert_eq!(line[2], (100.0, 1.0), "the maximum at the top");
        assert!(svg.starts_with("<svg class=\"sparkline\""));
        assert!(svg.contains(r#"viewBox="0 0 101 22""#));
        assert!(svg.ends_with("</svg>"));
    }

    #[test]
    fn gaps_break_the_line_and_an_empty_series_draws_nothing() {
        let svg = sparkline(&[Some(1.0), Some(2.0), None, Some(3.0)], 40, 10, "x");
        assert_eq!(polylines(&svg).len(), 2);
        let empty = sparkline(&[None, None], 40, 10, "x");
        assert!(polylines(&empty).is_empty());
        assert!(empty.contains("<title>x</title>"));
        let flat = sparkline(&[Some(4.0); 3], 40, 10, "x");
        assert_eq!(polylines(&flat)[0].len(), 3, "a constant is still drawn");
    }

    #[test]
    fn a_day_of_minutes_is_reduced_to_one_point_per_pixel_keeping_spikes() {
        let mut day = vec![Some(1.0); crate::history::MINUTES];
        day[700] = Some(90.0);
        let svg = sparkline(&day, 120, 24, "latency");
        let line = &polylines(&svg)[0];
        assert_eq!(line.len(), 120);
        assert!(
            line.iter().any(|(_, y)| *y == 1.0),
            "the spike reaches the top"
        );
        assert!(svg.len() < 2_000, "{} bytes", svg.len());
    }

    #[test]
    fn the_label_is_escaped_and_nothing_styles_inline() {
        let svg = sparkline(&[Some(1.0)], 10, 10, r#"players "survival" <b>"#);
        assert!(svg.contains("players &quot;survival&quot; &lt;b&gt;"));
        assert!(!svg.contains("<b>"));
        assert!(!svg.contains("style"));
    }
}
