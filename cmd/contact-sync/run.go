package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/contact-sync/contact-sync/config"
	"github.com/contact-sync/contact-sync/internal/service"
)

// runWorker runs the worker until ctx ends. Settings come from the
// environment only, so that a Kubernetes ConfigMap sets all of them.
func runWorker(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("run", flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.Usage = func() { printSettings(stderr) }
	if err := flags.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if flags.NArg() > 0 {
		fmt.Fprintf(stderr, "contact-sync run: unexpected argument %q; settings come from CONTACT_SYNC_* variables\n", flags.Arg(0))
		return 2
	}

	cfg, err := config.Load(config.FromEnviron(os.Environ()))
	if err != nil {
		fmt.Fprintf(stderr, "contact-sync run: invalid configuration:\n%v\n(contact-sync run -h lists every variable)\n", err)
		return 2
	}

	logger := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	logger.Info().Fields(cfg.LogFields()).Msg("contact-sync starting")

	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	svc, err := service.Start(cfg, logger, registry)
	if err != nil {
		logger.Error().Err(err).Msg("start-up failed")
		return 1
	}
	if err := svc.Run(ctx); err != nil {
		logger.Error().Err(err).Msg("contact-sync stopped with an error")
		return 1
	}
	logger.Info().Msg("contact-sync stopped")
	return 0
}

// printSettings writes the table of environment variables.
func printSettings(out io.Writer) {
	fmt.Fprintln(out, "Usage: contact-sync run\n\nSettings (environment variables):")
	table := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	for _, setting := range config.Settings() {
		fmt.Fprintf(table, "  %s\t%s\t%s\n", setting.Variable, displayDefault(setting.Default), setting.Help)
	}
	table.Flush()
}

func displayDefault(value string) string {
	if value == "" {
		return "(none)"
	}
	return value
}
