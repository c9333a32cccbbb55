/*
 * eval_retrieval.h — `embedsrv eval retrieval`: a collection's ranking on a
 * judged query set, through a running server, as nDCG@10, MAP@100 and
 * recall@100 (the definitions of bench/lexical/cisi.py and trec_eval):
 *
 *   nDCG@10    sum over the top 10 of rel / log2(rank + 1), over the same
 *              sum for the judged documents in their best order;
 *   AP@100     sum of precision at each relevant hit in the top 100, over
 *              the number of relevant documents (rel > 0);
 *   recall@100 relevant documents in the top 100 over all relevant;
 * each averaged over the queries that have relevant judgments.
 *
 * Threading: none; no state between calls.
 */
#ifndef ES_EVAL_RETRIEVAL_H
#define ES_EVAL_RETRIEVAL_H

#include <stddef.h>

/* One query's judgments: doc ids and graded relevance (borrowed). */
typedef struct es_judged {
	const char *const *docs;
	const int *rel;
	size_t n;
} es_judged;

/* Metrics of one ranked list (doc ids best first) against its judgments:
 * returns 0, or -1 when the query has no relevant document (not counted). */
int es_retrieval_metrics(const char *const *ranked, size_t nranked,
			 const es_judged *j, double *ndcg10, double *ap100,
			 double *recall100);

#endif
