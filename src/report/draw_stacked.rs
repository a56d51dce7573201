//! One stacked-bar chart (a bar per category, layers stacked bottom-up, a label on each bar's top),
//! shared by the cost breakdown and the multi-region CO2 plot.

use super::draw::{bar_range, font, segment_label, tick, DrawErr, Figure};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// One layer of the stack: its legend name, colour and one value per bar (same order as the
/// chart's names); a value that is not finite counts as 0 so one bad number never hides the rest.
pub(crate) struct Layer {
    pub name: &'static str,
    pub colour: RGBColor,
    pub values: Vec<f64>,
}

/// A stacked-bar chart: caption, the y-axis description, one name per bar, the layers in stacking
/// order, the text over each bar, and the bar's side margin [px].
pub(crate) struct StackedBars {
    pub caption: String,
    pub y_desc: String,
    pub names: Vec<String>,
    pub layers: Vec<Layer>,
    pub top_labels: Vec<String>,
    pub side_margin_px: u32,
}

fn finite(v: f64) -> f64 {
    if v.is_finite() {
        v
    } else {
        0.0
    }
}

impl StackedBars {
    /// Height of bar `i`: the finite sum of its layers.
    fn total(&self, i: usize) -> f64 {
        self.layers
            .iter()
            .map(|l| finite(l.values.get(i).copied().unwrap_or(0.0)))
            .sum()
    }
}

impl Figure for StackedBars {
    /// Draw the chart on `root`, with the legend in the upper right.
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), DrawErr> {
        let n = self.names.len() as i32;
        let hi = (0..self.names.len())
            .map(|i| self.total(i))
            .fold(0.0, f64::max);
        // Room above the tallest bar for its label.
        let hi = if hi > 0.0 { hi * 1.15 } else { 1.0 };
        let names = &self.names;
        let mut chart = ChartBuilder::on(root)
            .caption(&self.caption, font(20))
            .margin(14)
            .x_label_area_size(34)
            .y_label_area_size(80)
            .build_cartesian_2d(bar_range(n).into_segmented(), 0.0..hi)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(names.len())
            .x_label_formatter(&|v| segment_label(names, v))
            .y_desc(self.y_desc.as_str())
            .y_label_formatter(&tick)
            .label_style(font(13))
            .draw()?;
        let mut below = vec![0.0; self.names.len()];
        for layer in &self.layers {
            let colour = layer.colour;
            let spans: Vec<(f64, f64)> = below
                .iter_mut()
                .enumerate()
                .map(|(i, b)| {
                    let lo = *b;
                    *b += finite(layer.values.get(i).copied().unwrap_or(0.0));
                    (lo, *b)
                })
                .collect();
            let bars = spans.into_iter().enumerate().map(|(i, (lo, top))| {
                let i = i as i32;
                let mut bar = Rectangle::new(
                    [
                        (SegmentValue::Exact(i), lo),
                        (SegmentValue::Exact(i + 1), top),
                    ],
                    colour.filled(),
                );
                bar.set_margin(0, 0, self.side_margin_px, self.side_margin_px);
                bar
            });
            chart
                .draw_series(bars)?
                .label(layer.name)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 6), (x + 14, y + 6)], colour.filled())
                });
        }
        chart.draw_series(self.top_labels.iter().enumerate().map(|(i, text)| {
            Text::new(
                text.clone(),
                (SegmentValue::CenterOf(i as i32), self.total(i)),
                font(13).pos(Pos::new(HPos::Center, VPos::Bottom)),
            )
        }))?;
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(font(13))
            .draw()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bar_is_the_finite_sum_of_its_layers() {
        let chart = StackedBars {
            caption: String::new(),
            y_desc: String::new(),
            names: vec!["a".into(), "b".into()],
            layers: vec![
                Layer {
                    name: "x",
                    colour: BLACK,
                    values: vec![1.0, f64::NAN],
                },
                Layer {
                    name: "y",
                    colour: BLACK,
                    values: vec![2.5, 4.0],
                },
            ],
            top_labels: Vec::new(),
            side_margin_px: 0,
        };
        assert_eq!(chart.total(0), 3.5);
        assert_eq!(chart.total(1), 4.0);
    }
}
