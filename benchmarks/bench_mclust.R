# R side of benchmarks/bench_mclust.py (run by it; needs R with the mclust and MASS packages).
#
#   Rscript bench_mclust.R export OUTDIR NAME...
#       writes OUTDIR/NAME.csv: the data set's numeric columns, every value written so that
#       it reads back to the same double (15 significant digits, 17 where 15 do not).
#   Rscript bench_mclust.R fit CSV PREFIX GMAX SUBSET CHECKS
#       times Mclust(X, G = 1:GMAX) (all 14 models, mclust's defaults) inside R and writes
#       PREFIX-cells.csv (model, G, bic, npar, loglik, return code: one row per cell),
#       PREFIX-summary.csv (key, value) and PREFIX-checks.csv.  SUBSET is a comma list of
#       models ("-" for none) timed again as Mclust(X, G = 1:GMAX, modelNames = SUBSET): the
#       models emcli fitted, for a like-for-like time.  CHECKS is a comma list of MODEL:G
#       cells refitted as Mclust(X, G = g, modelNames = m) to check loglik =
#       (BIC + npar log n) / 2 ("auto": the chosen cell, VVV at 4 and EVE at 3).

suppressPackageStartupMessages(library(mclust))

datasets <- function(name) {
  switch(name,
    faithful = datasets::faithful,
    iris = datasets::iris[, 1:4],
    diabetes = {
      e <- new.env(); data("diabetes", package = "mclust", envir = e)
      e$diabetes[, c("glucose", "insulin", "sspg")]
    },
    banknote = {
      e <- new.env(); data("banknote", package = "mclust", envir = e)
      e$banknote[, c("Length", "Left", "Right", "Bottom", "Top", "Diagonal")]
    },
    wreath = {
      e <- new.env(); data("wreath", package = "mclust", envir = e)
      as.data.frame(e$wreath)
    },
    thyroid = {
      e <- new.env(); data("thyroid", package = "mclust", envir = e)
      e$thyroid[, c("RT3U", "T4", "T3", "TSH", "DTSH")]
    },
    crabs = {
      e <- new.env(); data("crabs", package = "MASS", envir = e)
      e$crabs[, c("FL", "RW", "CL", "CW", "BD")]
    },
    geyser = {
      e <- new.env(); data("geyser", package = "MASS", envir = e)
      e$geyser[, c("waiting", "duration")]
    },
    stop("unknown data set ", name)
  )
}

exact <- function(v) {
  # Shortest of 15 or 17 significant digits that reads back to the same double.
  s <- sprintf("%.15g", v)
  bad <- !is.na(v) & suppressWarnings(as.numeric(s)) != v
  bad[is.na(bad)] <- FALSE
  s[bad] <- sprintf("%.17g", v[bad])
  s
}

write_exact <- function(df, path) {
  out <- as.data.frame(lapply(df, function(v) if (is.numeric(v)) exact(v) else as.character(v)),
                       stringsAsFactors = FALSE)
  write.csv(out, path, row.names = FALSE, quote = FALSE)
}

args <- commandArgs(trailingOnly = TRUE)
if (args[1] == "export") {
  for (name in args[-(1:2)]) write_exact(datasets(name), file.path(args[2], paste0(name, ".csv")))
  quit(status = 0)
}

stopifnot(args[1] == "fit")
X <- read.csv(args[2])
prefix <- args[3]
gmax <- as.integer(args[4])
n <- nrow(X); d <- ncol(X)

t0 <- proc.time()
fit <- Mclust(X, G = 1:gmax, verbose = FALSE)
t1 <- proc.time() - t0
since_start <- proc.time()[["elapsed"]]  # R's clock starts with the process

B <- fit$BIC
codes <- attr(B, "returnCodes")
rows <- list()
for (m in colnames(B)) for (g in rownames(B)) {
  bic <- B[g, m]
  npar <- nMclustParams(m, d, as.integer(g))
  rows[[length(rows) + 1]] <- data.frame(
    model = m, G = as.integer(g), bic = exact(bic), npar = npar,
    loglik = exact((bic + npar * log(n)) / 2), code = codes[g, m])
}
write.csv(do.call(rbind, rows), paste0(prefix, "-cells.csv"), row.names = FALSE, quote = FALSE)

subset_time <- NA; subset_user <- NA; subset_sys <- NA
if (args[5] != "-") {
  models <- strsplit(args[5], ",")[[1]]
  s0 <- proc.time()
  Mclust(X, G = 1:gmax, modelNames = models, verbose = FALSE)
  s1 <- proc.time() - s0
  subset_time <- s1[["elapsed"]]; subset_user <- s1[["user.self"]]; subset_sys <- s1[["sys.self"]]
}

summary <- data.frame(
  key = c("elapsed", "user", "system", "since_start", "subset_elapsed", "subset_user", "subset_system",
          "model", "G", "loglik", "bic", "n", "d", "mclust", "R"),
  value = c(t1[["elapsed"]], t1[["user.self"]], t1[["sys.self"]], since_start, subset_time, subset_user,
            subset_sys, fit$modelName, fit$G, exact(fit$loglik), exact(fit$bic), n, d,
            as.character(packageVersion("mclust")), R.version.string))
write.csv(summary, paste0(prefix, "-summary.csv"), row.names = FALSE)

cells <- if (args[6] == "auto") c(paste0(fit$modelName, ":", fit$G), "VVV:4", "EVE:3") else
  strsplit(args[6], ",")[[1]]
checks <- list()
for (cell in unique(cells)) {
  parts <- strsplit(cell, ":")[[1]]
  m <- parts[1]; g <- as.integer(parts[2])
  if (!(m %in% colnames(B)) || g > gmax) next
  one <- Mclust(X, G = g, modelNames = m, verbose = FALSE)
  ll <- if (is.null(one)) NA else one$loglik
  checks[[length(checks) + 1]] <- data.frame(model = m, G = g, refit_loglik = exact(ll))
}
if (length(checks)) {
  write.csv(do.call(rbind, checks), paste0(prefix, "-checks.csv"), row.names = FALSE,
            quote = FALSE)
}
