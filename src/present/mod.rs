//! Presenting results: aligned text, CSV and Markdown tables (`table`), and the figures (`plot`).
pub mod plot;
pub mod table;
