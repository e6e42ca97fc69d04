"""What the cluster's nodes send the service plane: a finished job's output.

Only the nodes call these routes, from their Epilog, through the reverse
forward of their SSH tunnel; each with its own node token, never the API
token (see gpuops_api.joboutput).
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status

from ..auth import _CHALLENGE, bearer
from ..joboutput import NODE_NAME, Received, Stream
from ..models import ErrorBody
from ..services import ServicesDep
from .jobs import JobId, _job

NodeName = Annotated[str, Path(pattern=NODE_NAME.pattern, description="The node's Slurm name")]


async def require_node_token(request: Request, node: NodeName) -> None:
    """FastAPI dependency: 401 unless the request carries `node`'s token; 503 when no store is configured."""
    store = request.app.state.services.outputs
    if store is None:
        raise HTTPException(503, "this API keeps no job output (job_output_store is not configured)")
    credentials = await bearer(request)
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(401, "missing bearer token: send 'Authorization: Bearer <node token>'", _CHALLENGE)
    if not store.node_token_matches(node, credentials.credentials):
        raise HTTPException(401, f"invalid token for node {node}", _CHALLENGE)


router = APIRouter(tags=["nodes"], dependencies=[Depends(require_node_token)],
                   responses={401: {"model": ErrorBody, "description": "No or wrong node token"}})


@router.put("/nodes/{node}/jobs/{job_id}/output/{stream}", status_code=status.HTTP_204_NO_CONTENT,
            summary="A node hands over a finished job's standard output or error (its Epilog)",
            responses={403: {"model": ErrorBody, "description": "The job did not run its batch script on this node"},
                       404: {"model": ErrorBody, "description": "Slurm does not know the job"}})
async def put_job_output(
    request: Request, svc: ServicesDep, node: NodeName, job_id: JobId, stream: Stream,
    restart: Annotated[int, Query(ge=0, le=65535, description="SLURM_JOB_RESTART_COUNT of the run")] = 0,
    truncated: Annotated[bool, Query(description="Only the file's end was sent")] = False,
) -> None:
    job = await _job(svc, job_id)
    if job.batch_host != node:
        raise HTTPException(403, f"job {job_id}'s batch host is {job.batch_host or 'none'}, not {node}: a node "
                                 "may only hand over the output of the jobs it ran")
    data = await request.body()
    if svc.outputs is None:  # require_node_token refused already
        raise HTTPException(503, "this API keeps no job output")
    received = Received(node=node, restart_count=restart, bytes=len(data), truncated=truncated,
                        received_at=time.time())
    svc.outputs.save(job_id, stream, data, received)
