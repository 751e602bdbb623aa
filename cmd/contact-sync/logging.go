package main

import (
	"io"
	"time"

	"github.com/rs/zerolog"
)

// newLogger returns a zerolog logger at level, writing JSON lines or, for
// the console format, coloured text for a terminal. The level was
// validated by config; an unknown one falls back to info.
func newLogger(out io.Writer, level, format string) zerolog.Logger {
	parsedLevel, err := zerolog.ParseLevel(level)
	if err != nil || parsedLevel == zerolog.NoLevel {
		parsedLevel = zerolog.InfoLevel
	}

	zerolog.TimeFieldFormat = time.RFC3339Nano
	writer := out
	if format == "console" {
		writer = zerolog.ConsoleWriter{Out: out, TimeFormat: time.TimeOnly, NoColor: !isTerminal(out)}
	}
	return zerolog.New(writer).Level(parsedLevel).With().Timestamp().Logger()
}
