"""The playground's engine: data, configs, Keras training, run store, evaluation. No UI here."""
