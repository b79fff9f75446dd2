//! The squarified treemap layout, a pure function (unit-tested here).

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

/// Squarified treemap (Bruls, Huizing, van Wijk): lay `weights` (sorted largest first) out in
/// `r`, each rectangle's area proportional to its weight, rows chosen to keep aspect ratios
/// near 1. Zero weights get empty rectangles.
pub fn squarify(weights: &[f64], r: Rect) -> Vec<Rect> {
    let total: f64 = weights.iter().sum();
    if weights.is_empty() || total <= 0.0 || r.w <= 0.0 || r.h <= 0.0 {
        return weights.iter().map(|_| Rect { x: r.x, y: r.y, w: 0.0, h: 0.0 }).collect();
    }
    let scale = r.w * r.h / total;
    let areas: Vec<f64> = weights.iter().map(|w| w * scale).collect();
    let mut out = Vec::with_capacity(areas.len());
    let (mut free, mut i) = (r, 0);
    while i < areas.len() {
        let side = free.w.min(free.h);
        let mut end = i + 1;
        while end < areas.len() && worst(&areas[i..=end], side) <= worst(&areas[i..end], side) {
            end += 1;
        }
        free = lay_row(&areas[i..end], free, &mut out);
        i = end;
    }
    out
}

/// The worst aspect ratio of a row of `areas` laid along a side of length `side`.
fn worst(areas: &[f64], side: f64) -> f64 {
    let s: f64 = areas.iter().sum();
    let (max, min) = areas.iter().fold((0f64, f64::MAX), |(a, b), &x| (a.max(x), b.min(x)));
    if s <= 0.0 || min <= 0.0 {
        return f64::MAX;
    }
    let s2 = s * s;
    let side2 = side * side;
    (side2 * max / s2).max(s2 / (side2 * min))
}

/// Place one row along the shorter side of `free`; return what is left.
fn lay_row(areas: &[f64], free: Rect, out: &mut Vec<Rect>) -> Rect {
    let s: f64 = areas.iter().sum();
    if free.w >= free.h {
        let w = if free.h > 0.0 { s / free.h } else { 0.0 };
        let mut y = free.y;
        for a in areas {
            let h = if w > 0.0 { a / w } else { 0.0 };
            out.push(Rect { x: free.x, y, w, h });
            y += h;
        }
        Rect { x: free.x + w, y: free.y, w: (free.w - w).max(0.0), h: free.h }
    } else {
        let h = if free.w > 0.0 { s / free.w } else { 0.0 };
        let mut x = free.x;
        for a in areas {
            let w = if h > 0.0 { a / h } else { 0.0 };
            out.push(Rect { x, y: free.y, w, h });
            x += w;
        }
        Rect { x: free.x, y: free.y + h, w: free.w, h: (free.h - h).max(0.0) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: Rect = Rect { x: 0.0, y: 0.0, w: 600.0, h: 400.0 };

    fn area(r: &Rect) -> f64 {
        r.w * r.h
    }

    #[test]
    fn areas_are_proportional_and_tile_the_rectangle() {
        let w = [6.0, 6.0, 4.0, 3.0, 2.0, 2.0, 1.0];
        let rs = squarify(&w, R);
        assert_eq!(rs.len(), w.len());
        let total: f64 = w.iter().sum();
        for (wi, r) in w.iter().zip(&rs) {
            assert!((area(r) - wi / total * area(&R)).abs() < 1e-6, "{r:?} for weight {wi}");
            assert!(r.x >= -1e-9 && r.y >= -1e-9 && r.x + r.w <= R.w + 1e-6 && r.y + r.h <= R.h + 1e-6, "{r:?} outside");
        }
        // No two rectangles overlap.
        for (i, a) in rs.iter().enumerate() {
            for b in &rs[i + 1..] {
                let ox = (a.x + a.w).min(b.x + b.w) - a.x.max(b.x);
                let oy = (a.y + a.h).min(b.y + b.h) - a.y.max(b.y);
                assert!(ox <= 1e-6 || oy <= 1e-6, "{a:?} overlaps {b:?}");
            }
        }
    }

    #[test]
    fn the_paper_example_gives_near_square_cells() {
        // Bruls et al.'s example: 6,6,4,3,2,2,1 in a 6x4 rectangle; the first row is 6,6 on the short side.
        let rs = squarify(&[6.0, 6.0, 4.0, 3.0, 2.0, 2.0, 1.0], Rect { x: 0.0, y: 0.0, w: 6.0, h: 4.0 });
        assert!((rs[0].w - 3.0).abs() < 1e-9 && (rs[0].h - 2.0).abs() < 1e-9, "{:?}", rs[0]);
        assert!((rs[1].y - 2.0).abs() < 1e-9, "{:?}", rs[1]);
        let worst = rs.iter().map(|r| (r.w / r.h).max(r.h / r.w)).fold(0.0, f64::max);
        assert!(worst < 3.0, "worst aspect {worst}");
    }

    #[test]
    fn degenerate_inputs_do_not_panic() {
        assert!(squarify(&[], R).is_empty());
        assert_eq!(squarify(&[0.0, 0.0], R).iter().map(area).sum::<f64>(), 0.0);
        let one = squarify(&[5.0], R);
        assert!((area(&one[0]) - area(&R)).abs() < 1e-6);
    }
}
