-- CreateTable
CREATE TABLE "PlayedItem" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "virtualLiveId" TEXT NOT NULL,
    "vodResourceId" TEXT NOT NULL,
    "position" INTEGER NOT NULL,
    "startedAt" DATETIME NOT NULL,
    "endedAt" DATETIME NOT NULL,
    CONSTRAINT "PlayedItem_virtualLiveId_fkey" FOREIGN KEY ("virtualLiveId") REFERENCES "VirtualLive" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateIndex
CREATE INDEX "PlayedItem_virtualLiveId_startedAt_idx" ON "PlayedItem"("virtualLiveId", "startedAt");

-- CreateIndex
CREATE INDEX "PlayedItem_endedAt_idx" ON "PlayedItem"("endedAt");
