package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/sluice-gateway/sluice/api/v1alpha1"
	"github.com/sluice-gateway/sluice/internal/payload/evaldata"
	"github.com/sluice-gateway/sluice/internal/payload/guardeval"
)

func guardCmd(stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{Use: "guard", Short: "Work with the built-in guardrails"}
	var (
		dir       string
		threshold float64
	)
	eval := &cobra.Command{
		Use:   "eval [--data DIR]",
		Short: "Measure prompt-injection and PII detection on the public evaluation data",
		Long: "Prints, per data file, prompt-injection recall on the malicious sets and the false-positive\n" +
			"rate on the benign sets (held-out rows the classifier never trained on), and PII recall and\n" +
			"precision per entity type. DIR defaults to ../shared/evaldata from the module root\n" +
			"(or $" + evaldata.EnvDir + ").",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				dir = evaldata.Dir()
			}
			err := guardeval.Report(stdout, dir, threshold)
			if errors.Is(err, evaldata.ErrNoData) {
				fmt.Fprintf(stdout, "No evaluation data at %s; nothing to measure. Pass --data DIR (see docs/guardrails.md).\n", dir)
				return nil
			}
			return err
		},
	}
	eval.Flags().StringVar(&dir, "data", "", "the evaluation data folder (default ../shared/evaldata)")
	eval.Flags().Float64Var(&threshold, "threshold", v1alpha1.DefaultInjectionThreshold, "the prompt-injection score threshold")
	cmd.AddCommand(eval)
	return cmd
}
