"""Data readers, validation and the generated MVTec-layout data set."""
