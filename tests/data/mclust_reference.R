# Writes the R mclust reference files of tests/data/ (see README.md there):
#   mclust_reference.json    loglik, npar and BIC of every (model, G) cell, G = 1..5, of
#                            faithful, iris and diabetes, as Mclust reports them
#   diabetes.csv, geyser.csv the data sets that sample_data/ does not ship
#   mclust_hc_faithful.json  mclust's hierarchical start (hc, hclass) on faithful, G = 1..9
#   mclust_hc_geyser.json    the same on MASS::geyser
# Run from the repository root:  Rscript tests/data/mclust_reference.R
# Needs R with mclust (6.0.0 recorded), MASS and jsonlite.

suppressPackageStartupMessages({library(mclust); library(jsonlite)})
out <- "tests/data"
e <- new.env()
data("diabetes", package = "mclust", envir = e)
data("geyser", package = "MASS", envir = e)

sets <- list(
  faithful = list(X = datasets::faithful, expr = "X <- datasets::faithful"),
  iris = list(X = datasets::iris[, 1:4], expr = "X <- datasets::iris[, 1:4]"),
  diabetes = list(X = e$diabetes[, c("glucose", "insulin", "sspg")],
                  expr = "data(diabetes, package = 'mclust'); X <- diabetes[, c('glucose', 'insulin', 'sspg')]")
)

reference <- list(
  mclust = as.character(packageVersion("mclust")),
  R = R.version.string,
  commands = c(
    "library(mclust)",
    "fit <- Mclust(X, G = 1:5)   # all 14 models, mclust's defaults (hierarchical start: hc(X, modelName = 'VVV', use = 'SVD'))",
    "bic <- fit$BIC[g, m]; npar <- nMclustParams(m, ncol(X), g); code <- attr(fit$BIC, 'returnCodes')[g, m]",
    "loglik <- Mclust(X, G = g, modelNames = m)$loglik   # each cell refitted alone (same hc start)",
    "loglik_from_bic <- (bic + npar * log(nrow(X))) / 2   # equal to loglik (checked: max_abs_loglik_vs_bic)"
  ),
  notes = paste(
    "BIC is mclust's sign (2 loglik - npar log n, higher is better; emcli's BIC is minus this).",
    "A cell with return code != 0 is one mclust reports as NA (singular covariance): loglik,",
    "bic are null there. Rounded to 15 significant digits."
  ),
  datasets = list()
)

for (name in names(sets)) {
  X <- sets[[name]]$X
  n <- nrow(X); d <- ncol(X)
  fit <- Mclust(X, G = 1:5, verbose = FALSE)
  B <- fit$BIC
  codes <- attr(B, "returnCodes")
  cells <- list()
  worst <- 0
  for (m in colnames(B)) for (g in 1:5) {
    bic <- B[as.character(g), m]
    npar <- nMclustParams(m, d, g)
    one <- Mclust(X, G = g, modelNames = m, verbose = FALSE)
    ll <- if (is.null(one)) NA else one$loglik
    if (!is.na(bic)) worst <- max(worst, abs((bic + npar * log(n)) / 2 - ll))
    cells[[length(cells) + 1]] <- list(
      model = m, G = g, npar = npar, code = codes[as.character(g), m],
      loglik = if (is.na(bic)) NULL else ll, bic = if (is.na(bic)) NULL else bic)
  }
  reference$datasets[[name]] <- list(
    data = sets[[name]]$expr, n = n, d = d, columns = colnames(X),
    chosen = list(model = fit$modelName, G = fit$G, loglik = fit$loglik, bic = fit$bic),
    max_abs_loglik_vs_bic = worst, cells = cells)
}
writeLines(toJSON(reference, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null"),
           file.path(out, "mclust_reference.json"))

diabetes <- e$diabetes[, c("glucose", "insulin", "sspg", "class")]
write.csv(diabetes, file.path(out, "diabetes.csv"), row.names = FALSE, quote = FALSE)
geyser <- e$geyser[, c("waiting", "duration")]
write.csv(geyser, file.path(out, "geyser.csv"), row.names = FALSE, quote = FALSE)

hc_record <- function(X, expr, file) {
  tree <- hc(X, modelName = "VVV", use = "SVD")
  init <- attr(Mclust(X, G = 1:9, modelNames = "VVV", verbose = FALSE)$BIC, "initialization")
  same <- identical(dim(tree), dim(init$hcPairs)) && all(tree == init$hcPairs)
  cl <- hclass(tree, 1:9)
  times <- replicate(5, system.time(hc(X, modelName = "VVV", use = "SVD"))[["elapsed"]])
  vvv <- Mclust(X, G = 1:9, modelNames = "VVV", verbose = FALSE)
  rec <- list(
    mclust = as.character(packageVersion("mclust")),
    R = R.version.string,
    commands = c("library(mclust)", expr,
                 "tree <- hc(X, modelName = 'VVV', use = 'SVD')",
                 "cl <- hclass(tree, 1:9)   # n x 9: column G is the partition into G groups"),
    notes = paste(
      "use = 'SVD': X is centred and scaled (scale(X)), then Z = X V diag(1/sqrt(s)) with",
      "svd(X) = U diag(s) V'; hcVVV merges on Z from singletons (hc's formal partition =",
      "dupPartition(X) is not passed on: match.call() holds only given arguments, so hcVVV",
      "gets partition = NULL = 1:n; initial_groups records it), with its defaults alpha = 1,",
      "beta = 1 (alpha scaled by traceW(Z / sqrt(n d))). Labels are 1-based, as hclass",
      "gives them.",
      "'merge' is the tree, stage by stage: the two groups merged at stage j, each named by",
      "the smallest (1-based) row index in it (?hc).",
      "same_as_Mclust_initialization: this tree equals attr(Mclust(X, G = 1:9, modelNames =",
      "'VVV')$BIC, 'initialization')$hcPairs."),
    n = nrow(X), d = ncol(X), columns = colnames(X),
    same_as_Mclust_initialization = same,
    initial_groups = length(unique(attr(tree, "initialPartition"))),
    hc_seconds_median_of_5 = median(times),
    group_sizes = lapply(1:9, function(g) I(as.integer(table(cl[, g])))),
    partitions = lapply(1:9, function(g) as.integer(cl[, g])),
    merge = unname(lapply(seq_len(ncol(tree)), function(j) as.integer(tree[, j]))),
    vvv_loglik_from_hc_start = unname(vvv$BIC[, "VVV"] / 2 +
                                        sapply(1:9, function(g) nMclustParams("VVV", ncol(X), g)) * log(nrow(X)) / 2)
  )
  writeLines(toJSON(rec, auto_unbox = TRUE, digits = NA, null = "null"), file.path(out, file))
}
hc_record(datasets::faithful, "X <- datasets::faithful", "mclust_hc_faithful.json")
hc_record(geyser, "data(geyser, package = 'MASS'); X <- geyser[, c('waiting', 'duration')]",
          "mclust_hc_geyser.json")
