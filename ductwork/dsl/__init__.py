"""The DSL: @step, @pipeline, Output placeholders, tracing and the step graph."""
