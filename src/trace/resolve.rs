//! Trace → needs: each recorded path resolved inside the image (placeholder, filled next).
